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

__all__ = ["HOOK_NAMES", "Backend", "FocusHandler", "Sink"]

#: Called on the focus thread as (t_ns monotonic, application class, title).
#: It runs on the backend's thread: it must be quick and must not call back
#: into the backend's start/stop methods.
FocusHandler = Callable[[int, str | None, str | None], None]

#: Every name `Backend.hooks()` may report, in the order it reports them.
HOOK_NAMES = ("keyboard", "mouse.move", "mouse.click", "mouse.scroll", "focus", "focus.titles")


class Sink:
    """Where hook callbacks put events.

    `excluded` is set by the recorder while an excluded application has focus;
    callbacks check it and drop the event before it reaches the queue, so no
    content typed into a password manager ever exists outside the OS.
    """

    __slots__ = ("excluded", "queue")

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        self.excluded = False


class Backend(Protocol):
    """Installs and removes hooks for one platform.

    Every `start_*` called while that hook already runs stops the old hook first
    and starts a new one with the new arguments (a restart, never a second
    hook). Every `stop_*` is idempotent and returns only once its thread has
    ended (bounded by a 2 s join). Nothing touches the display before a
    `start_*` call.
    """

    name: str

    def start_keyboard(self, sink: Sink) -> None:
        """Hook key presses and releases into `sink`.

        Raises:
            DisplayUnavailable: the display cannot be hooked.
        """

    def stop_keyboard(self) -> None:
        """Remove the keyboard hook, if any."""

    def start_mouse(self, sink: Sink, *, moves: bool, clicks: bool, scrolls: bool) -> None:
        """Hook only the mouse events asked for: no consent, no callback at all.

        With all three flags False no hook is installed (and a running one is
        removed).

        Raises:
            DisplayUnavailable: the display cannot be hooked.
        """

    def stop_mouse(self) -> None:
        """Remove the mouse hook, if any."""

    def start_focus(self, handler: FocusHandler, *, titles: bool) -> None:
        """Report the focused application now and on every change.

        With `titles` False no window title is ever read from the display.

        Raises:
            DisplayUnavailable: the display cannot be watched.
        """

    def stop_focus(self) -> None:
        """Stop watching the focus, if watched."""

    def focused(self) -> tuple[str | None, str | None]:
        """The last reported (application class, title); title only when
        titles are watched, (None, None) when the focus is not watched."""

    def hooks(self) -> list[str]:
        """The hooks installed now, a subsequence of `HOOK_NAMES`."""

    def close(self) -> None:
        """Remove every hook; idempotent."""
