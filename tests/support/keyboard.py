"""Key events as pynput reports them on X, built by hand for the review tests."""

from __future__ import annotations

from cleartrace.events import Event, Kind, keysym_of_char
from cleartrace.review.text import Stream, reconstruct

__all__ = ["KEYSYM", "SHIFTED", "Keyboard"]

# X keysyms, from X11/keysymdef.h.
KEYSYM = {
    "space": 0x20,
    "BackSpace": 0xFF08,
    "Tab": 0xFF09,
    "Return": 0xFF0D,
    "KP_Enter": 0xFF8D,
    "Escape": 0xFF1B,
    "Delete": 0xFFFF,
    "Home": 0xFF50,
    "Left": 0xFF51,
    "Up": 0xFF52,
    "Right": 0xFF53,
    "Down": 0xFF54,
    "Prior": 0xFF55,
    "Next": 0xFF56,
    "End": 0xFF57,
    "F5": 0xFFC2,
    "shift": 0xFFE1,
    "ctrl": 0xFFE3,
    "Caps_Lock": 0xFFE5,
    "alt": 0xFFE9,
    "dead_grave": 0xFE50,
    "dead_acute": 0xFE51,
    "dead_circumflex": 0xFE52,
    "dead_diaeresis": 0xFE57,
}
SHIFTED = dict(zip('!@#$%^&*()_+:"<>?{}|~', "1234567890-=;',./[]\\`", strict=True))


class Keyboard:
    """Key events as pynput reports them on X: the character as shifted, Shift let go first."""

    def __init__(self, app: str = "Editor") -> None:
        self.events: list[Event] = []
        self.focus(app)

    def _add(self, kind: Kind, a: int = 0, app: str | None = None) -> int:
        title = None if app is None else f"{app} window"
        self.events.append(Event(len(self.events) * 1_000_000, kind, a, app=app, title=title))
        return len(self.events) - 1

    def down(self, keysym: int) -> int:
        return self._add(Kind.KEY_DOWN, keysym)

    def up(self, keysym: int) -> int:
        return self._add(Kind.KEY_UP, keysym)

    def focus(self, app: str) -> None:
        self._add(Kind.FOCUS, app=app)

    def type(self, text: str) -> list[tuple[int, int]]:
        """Type `text`; returns (press, release) of each character's key."""
        out = []
        for ch in text:
            if ch == "\n":
                out.append(self.tap("Return"))
                continue
            shifted = ch.isupper() or ch in SHIFTED
            if shifted:
                self.down(KEYSYM["shift"])
            press = self.down(keysym_of_char(ch))
            if shifted:
                self.up(KEYSYM["shift"])
            release = self.up(keysym_of_char(SHIFTED.get(ch, ch.lower())))
            out.append((press, release))
        return out

    def tap(self, name: str, *modifiers: str) -> tuple[int, int]:
        for m in modifiers:
            self.down(KEYSYM[m])
        keysym = KEYSYM.get(name) or keysym_of_char(name)
        pair = self.down(keysym), self.up(keysym)
        for m in reversed(modifiers):
            self.up(KEYSYM[m])
        return pair

    def keys(self, *names: str) -> None:
        """Tap each of `names`; "shift+Left" holds the modifiers around the key."""
        for name in names:
            *modifiers, key = name.split("+")
            self.tap(key, *modifiers)

    def click(self) -> None:
        self._add(Kind.BUTTON_DOWN, 100)
        self._add(Kind.BUTTON_UP, 100)

    def stream(self) -> Stream:
        (stream,) = reconstruct(self.events)
        return stream

    def text(self) -> str:
        return self.stream().text
