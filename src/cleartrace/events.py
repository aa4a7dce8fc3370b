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
FOCUS          window x      window y      width       height  (+ app class, title)
EXCLUDED_*     0             0             0           0   (no content at all)
SCREEN         monitors      root width    root height scale %
MONITOR        x             y             width       height
LAYOUT         XKB group     0             0           0   (+ layout name as "app")
=============  ============  ============  ==========  ==========

Context events say what the input happened in, so that a click can be placed
on its monitor and a key read in its keyboard layout. A screen layout is one
SCREEN event (how many monitors follow, the root window's size in pixels, the
scale in percent: 100 is 96 dpi) followed at the same time by that many
MONITOR events (each monitor's position and size in root coordinates, the
primary first); it is written at the start of every session and whenever it
changes. FOCUS carries the focused window's frame geometry in root
coordinates (zeros when unknown). LAYOUT is the XKB group in force from then
on and its layout's name (such as "us" or "de"), written at the start of
every session and when the group changes. Each belongs to the category of
the input it describes: the screen to `clicks`, the keyboard layout to
`keys`, the window geometry to `app_focus` (with its focus event).

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
    "RUN_BREAKS",
    "TYPING_PAUSE_NS",
    "UNICODE_KEYSYM",
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
    SCREEN = 10
    MONITOR = 11
    LAYOUT = 12


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
    Kind.SCREEN: Category.CLICKS,
    Kind.MONITOR: Category.CLICKS,
    Kind.LAYOUT: Category.KEYS,
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
#: x, y; button: x, y, button; scroll: x, y, dx, dy; focus: the window's
#: geometry; screen, monitor: four numbers; layout: the group); the rest are
#: always 0, so a non-zero one is content no category allows.
NUMBERS_OF_KIND: dict[Kind, int] = {
    Kind.KEY_DOWN: 1,
    Kind.KEY_UP: 1,
    Kind.MOVE: 2,
    Kind.BUTTON_DOWN: 3,
    Kind.BUTTON_UP: 3,
    Kind.SCROLL: 4,
    Kind.FOCUS: 4,
    Kind.EXCLUDED_START: 0,
    Kind.EXCLUDED_END: 0,
    Kind.SCREEN: 4,
    Kind.MONITOR: 4,
    Kind.LAYOUT: 1,
}

#: A gap between two key events at least this long ends a typing run: the
#: unit that key timing is evened out over before it leaves a device, and the
#: span of one `type` action in the dataset.
TYPING_PAUSE_NS = 2_000_000_000

#: The kinds that end a typing run whatever the gap: a button press, a focus
#: change, an exclusion, a new screen layout (what was typed before belongs
#: to another window or screen than what comes after).
RUN_BREAKS = (
    Kind.BUTTON_DOWN,
    Kind.FOCUS,
    Kind.EXCLUDED_START,
    Kind.EXCLUDED_END,
    Kind.SCREEN,
    Kind.MONITOR,
)

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


#: What a Unicode character above U+00FF is or-ed with to make its X keysym.
UNICODE_KEYSYM = 0x01000000


def keysym_of_char(char: str) -> int:
    """The X keysym of a single character."""
    cp = ord(char)
    return cp if cp < 0x100 else UNICODE_KEYSYM | cp


def char_of_keysym(keysym: int) -> str | None:
    """The character a keysym types, or None for a special (non-printing) key."""
    if 0x20 <= keysym < 0x7F or 0xA0 <= keysym < 0x100:
        return chr(keysym)
    if UNICODE_KEYSYM <= keysym <= UNICODE_KEYSYM + 0x10FFFF:
        return chr(keysym - UNICODE_KEYSYM)
    return None
