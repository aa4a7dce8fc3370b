"""What each data category means, in plain words, with an example of what is stored.

One place for these texts so the consent dialog, the "captured now" window
and the history say the same thing about a category (PRIVACY.md's table is
the long form). Qt-free: plain strings only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cleartrace.categories import DEPENDS_ON, Category

__all__ = [
    "CATEGORY_TEXTS",
    "CategoryText",
    "category_names",
    "describe_key_storage",
    "local_time",
    "needs_note",
]


@dataclass(frozen=True, slots=True)
class CategoryText:
    """`label` names the category; `stores` says what is kept; `example` shows one."""

    label: str
    stores: str
    example: str

    def sentence(self, mouse_move_hz: int = 120) -> str:
        """What is stored and an example: "Stores the keys you press, so the text you
        type: 'Dear Anna'". `mouse_move_hz` is the policy's limit on mouse moves."""
        return f"Stores {self.stores.format(hz=mouse_move_hz)}: {self.example}"


CATEGORY_TEXTS: dict[Category, CategoryText] = {
    Category.KEYS: CategoryText(
        "Keys you press",
        "the keys you press, so the text you type, and your keyboard layout",
        "'Dear Anna'",
    ),
    Category.MOUSE_MOVE: CategoryText(
        "Mouse movement",
        "where the pointer is, up to {hz} times a second",
        "(640, 412)",
    ),
    Category.CLICKS: CategoryText(
        "Mouse clicks",
        "which mouse button you press and where, and your screens' sizes",
        "left button at (640, 412)",
    ),
    Category.SCROLL: CategoryText(
        "Scrolling", "each scroll step and where the pointer was", "one step down at (640, 412)"
    ),
    Category.APP_FOCUS: CategoryText(
        "Application in front",
        "the application in front and where its window is, when it changes",
        "'firefox'",
    ),
    Category.WINDOW_TITLES: CategoryText(
        "Window titles",
        "the window's title, which can name a document or an e-mail",
        "'Inbox – Mail'",
    ),
    # Nothing more is stored: this says whether the keys' timing leaves as typed.
    Category.TYPING_RHYTHM: CategoryText(
        "Typing rhythm",
        "nothing more: it lets your keys' exact timing leave, which can identify you",
        "'a' held 87 ms",
    ),
}


def needs_note(category: Category) -> str | None:
    """For a category that depends on another: "needs 'Application in front'"."""
    base = DEPENDS_ON.get(category)
    return None if base is None else f"needs '{CATEGORY_TEXTS[base].label}'"


def category_names(names: Iterable[str]) -> str:
    """Categories in words, in the usual order: "keys you press, mouse clicks".

    Takes plain strings (as ledger records hold them); unknown ones come last,
    as they are.
    """
    order = {c.value: i for i, c in enumerate(Category)}
    words = {c.value: t.label[0].lower() + t.label[1:] for c, t in CATEGORY_TEXTS.items()}
    ordered = sorted((str(n) for n in names), key=lambda n: (order.get(n, len(order)), n))
    return ", ".join(words.get(n, n) for n in ordered)


def describe_key_storage(key_storage: dict[str, str] | None) -> str:
    """Where the keys that encrypt the recordings are kept, for a person."""
    if key_storage is None:
        return "Not set up yet: keys are created when something is first stored."
    backend, location = key_storage.get("backend", ""), key_storage.get("location", "")
    if backend == "keyring":
        return f"In your system keychain ({location})."
    if backend == "file":
        return f"In key files readable only by you: {location.removeprefix('key files ')}."
    return f"{backend}: {location}"


def local_time(utc: str, *, seconds: bool = False) -> str:
    """A UTC time as ledger records and the recorder write it ("…Z"), in local
    time: "10:15" today, "24 Nov 10:15" on another day; the text as it is if it
    does not parse (a tampered record must still show)."""
    try:
        when = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone()
    except (ValueError, AttributeError):
        return str(utc)
    clock = when.strftime("%H:%M:%S" if seconds else "%H:%M")
    if when.date() == datetime.now().astimezone().date():
        return clock
    return f"{when.day} {when.strftime('%b')} {clock}"
