"""Text typed per focused window, rebuilt from key events.

This first version handles printable characters (already shifted as X
delivered them), Caps Lock, BackSpace, Return and Tab; cursor movement and
selections come with the full reconstruction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cleartrace.events import Event, Kind, char_of_keysym

__all__ = ["Stream", "reconstruct"]

_BACKSPACE = 0xFF08
_TAB = 0xFF09
_RETURN = 0xFF0D
_KP_ENTER = 0xFF8D
_CAPS_LOCK = 0xFFE5


@dataclass(slots=True)
class Stream:
    """What was typed while one window had focus."""

    app: str | None
    title: str | None
    started_ns: int
    chars: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chars)


def reconstruct(events: Iterable[Event], *, caps_applied: bool = True) -> list[Stream]:
    """Split `events` into per-focus streams and replay their key presses.

    `caps_applied` says whether the capture layer already applied Caps Lock
    to the characters it reported (pynput on X11 does); when it did not, the
    case of letters is flipped while Caps Lock is on.
    """
    streams: list[Stream] = []
    current: Stream | None = None
    caps = False
    for ev in events:
        if ev.kind is Kind.FOCUS:
            current = Stream(ev.app, ev.title, ev.t_ns)
            streams.append(current)
            continue
        if ev.kind is not Kind.KEY_DOWN:
            continue
        if current is None:
            current = Stream(None, None, ev.t_ns)
            streams.append(current)
        code = ev.a
        if code == _CAPS_LOCK:
            caps = not caps
        elif code == _BACKSPACE:
            if current.chars:
                current.chars.pop()
        elif code in (_RETURN, _KP_ENTER):
            current.chars.append("\n")
        elif code == _TAB:
            current.chars.append("\t")
        else:
            char = char_of_keysym(code)
            if char is not None:
                if caps and not caps_applied and char.isalpha():
                    char = char.swapcase()
                current.chars.append(char)
    return [s for s in streams if s.chars]
