"""What every capture backend provides, whatever the platform.

A backend installs and removes OS hooks on request; the recorder decides which
(consent, pause). Hook callbacks only timestamp and put a `RawEvent` on the
sink's queue — no I/O, no locks, no logging — because Windows drops a slow
low-level hook and macOS disables a slow event tap.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Protocol

from cleartrace.events import RawEvent

__all__ = ["Backend", "FocusHandler", "Sink"]

#: Called on the focus thread as (t_ns monotonic, application class, title).
FocusHandler = Callable[[int, str | None, str | None], None]


class Sink:
    """Where hook callbacks put events.

    `excluded` is set by the recorder while an excluded application has focus;
    callbacks check it and drop the event before it reaches the queue.
    """

    __slots__ = ("excluded", "queue")

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        self.excluded = False


class Backend(Protocol):
    """Installs and removes hooks. Every `stop_*` is idempotent and returns
    only once its listener thread has ended."""

    name: str

    def start_keyboard(self, sink: Sink) -> None: ...

    def stop_keyboard(self) -> None: ...

    def start_mouse(self, sink: Sink, *, moves: bool, clicks: bool, scrolls: bool) -> None:
        """Register callbacks only for the flags given: no consent, no callback."""

    def stop_mouse(self) -> None: ...

    def start_focus(self, handler: FocusHandler, *, titles: bool) -> None:
        """Report focus changes; with `titles` False no title is ever read."""

    def stop_focus(self) -> None: ...

    def hooks(self) -> list[str]:
        """The hooks installed now: keyboard, mouse.move, mouse.click, mouse.scroll,
        focus, focus.titles."""

    def close(self) -> None: ...
