"""What every capture backend provides, whatever the platform.

A backend installs and removes OS hooks on request; the recorder decides which
(consent, pause). Hook callbacks only timestamp and put a `StampedEvent` on
the sink's queue — no I/O, no locks, no logging — because Windows drops a
slow low-level hook and macOS disables a slow event tap. Whether an event
went to an excluded application is decided later, by the writer, from the
event's time and the focus watcher's `FocusTimeline`: a callback cannot know
it, since the watcher may learn of a focus change after the keys that follow.
"""

from __future__ import annotations

import queue
from typing import Protocol

from cleartrace.capture.timeline import FocusTimeline
from cleartrace.events import FocusText

__all__ = ["HOOK_NAMES", "Backend", "Sink", "StampedEvent"]

#: A `RawEvent` (always without focus text) plus the event's time in the
#: platform's input clock (X server milliseconds), the clock the focus
#: timeline is kept in.
StampedEvent = tuple[int, int, int, int, int, int, FocusText | None, int]

#: Every name `Backend.hooks()` may report, in the order it reports them.
HOOK_NAMES = ("keyboard", "mouse.move", "mouse.click", "mouse.scroll", "focus", "focus.titles")


class Sink:
    """Where hook callbacks put events; the writer drains it."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()

    def drop(self) -> int:
        """Empty the queue without writing anything (what was typed at a lock
        screen); returns how many events went."""
        dropped = 0
        try:
            while True:
                self.queue.get_nowait()
                dropped += 1
        except queue.Empty:
            return dropped


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

    def start_focus(self, timeline: FocusTimeline, *, titles: bool) -> None:
        """Report the focused application to `timeline` now and on every change,
        stamped in the input events' clock, and confirm watermarks it asks for.

        Start it before the input hooks and stop it after them: its stop
        confirms a final watermark covering every event they delivered.
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

    def screen_locked(self) -> bool:
        """Whether the screen is locked now (False when it cannot be told)."""

    def close(self) -> None:
        """Remove every hook; idempotent."""
