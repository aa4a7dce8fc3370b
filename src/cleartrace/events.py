"""The event model shared by capture, store and review.

On the hot path an event is a plain tuple `RawEvent`: the hook callback builds
it with no allocation beyond the tuple itself. `Event` is the decoded, typed
form handed to review and export code.

Field meaning per kind (unused fields are 0):

=============  ============  ============  ==========  ==========
kind           a             b             c           d
=============  ============  ============  ==========  ==========
KEY_DOWN/UP    keysym        0             0           0
MOVE           x             y             0           0
BUTTON_DOWN/UP x             y             button      0
SCROLL         x             y             dx          dy
FOCUS          0             0             0           0   (+ app class, title)
EXCLUDED_*     0             0             0           0   (no content at all)
=============  ============  ============  ==========  ==========

Keys are stored as X keysyms: Latin-1 characters as their code point, other
characters as 0x01000000 + code point, special keys (BackSpace 0xff08, Return
0xff0d, Shift_L 0xffe1, ...) as their keysym.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import NamedTuple

from cleartrace.categories import Category

__all__ = [
    "CATEGORY_OF_KIND",
    "NUMBERS_OF_KIND",
    "Event",
    "FocusText",
    "Kind",
    "RawEvent",
    "category_counts",
    "char_of_keysym",
    "keysym_of_char",
]


class Kind(IntEnum):
    KEY_DOWN = 1
    KEY_UP = 2
    MOVE = 3
    BUTTON_DOWN = 4
    BUTTON_UP = 5
    SCROLL = 6
    FOCUS = 7
    EXCLUDED_START = 8
    EXCLUDED_END = 9


#: The consent category each kind of event belongs to (markers belong to none).
CATEGORY_OF_KIND: dict[Kind, Category | None] = {
    Kind.KEY_DOWN: Category.KEYS,
    Kind.KEY_UP: Category.KEYS,
    Kind.MOVE: Category.MOUSE_MOVE,
    Kind.BUTTON_DOWN: Category.CLICKS,
    Kind.BUTTON_UP: Category.CLICKS,
    Kind.SCROLL: Category.SCROLL,
    Kind.FOCUS: Category.APP_FOCUS,
    Kind.EXCLUDED_START: None,
    Kind.EXCLUDED_END: None,
}


def category_counts(by_kind: Mapping[int, int]) -> dict[str, int]:
    """Counts per kind folded into counts per category name, as the status
    reports them (the exclusion markers, of no category, as "excluded_markers")."""
    counts: dict[str, int] = {}
    for kind, n in by_kind.items():
        category = CATEGORY_OF_KIND[Kind(kind)]
        name = category.value if category else "excluded_markers"
        counts[name] = counts.get(name, 0) + n
    return counts


#: How many of the integer fields a..d each kind carries (key: keysym; move:
#: x, y; button: x, y, button; scroll: x, y, dx, dy); the rest are always 0,
#: so a non-zero one is content no category allows.
NUMBERS_OF_KIND: dict[Kind, int] = {
    Kind.KEY_DOWN: 1,
    Kind.KEY_UP: 1,
    Kind.MOVE: 2,
    Kind.BUTTON_DOWN: 3,
    Kind.BUTTON_UP: 3,
    Kind.SCROLL: 4,
    Kind.FOCUS: 0,
    Kind.EXCLUDED_START: 0,
    Kind.EXCLUDED_END: 0,
}

#: (application class, window title); either may be None (not consented or unknown).
FocusText = tuple[str | None, str | None]

#: (t_ns monotonic, kind, a, b, c, d, focus text or None) — see the module docstring.
RawEvent = tuple[int, int, int, int, int, int, FocusText | None]


class Event(NamedTuple):
    """One decoded event; `t_ns` is monotonic nanoseconds of the recording host.

    A named tuple rather than a frozen dataclass: equally immutable and
    slotted, and built several times faster, which is most of the cost of
    opening an eight-hour session (1.5 M events).
    """

    t_ns: int
    kind: Kind
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    app: str | None = None
    title: str | None = None

    @property
    def category(self) -> Category | None:
        return CATEGORY_OF_KIND[self.kind]


_UNICODE_KEYSYM = 0x01000000


def keysym_of_char(char: str) -> int:
    """The X keysym of a single character."""
    cp = ord(char)
    return cp if cp < 0x100 else _UNICODE_KEYSYM | cp


def char_of_keysym(keysym: int) -> str | None:
    """The character a keysym types, or None for a special (non-printing) key."""
    if 0x20 <= keysym < 0x7F or 0xA0 <= keysym < 0x100:
        return chr(keysym)
    if _UNICODE_KEYSYM <= keysym <= _UNICODE_KEYSYM + 0x10FFFF:
        return chr(keysym - _UNICODE_KEYSYM)
    return None
