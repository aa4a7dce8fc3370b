"""The hooks installed, kept equal to the categories allowed (the recorder's
consent and pause decide which): reconciled, never filtered.

The focus watcher starts before the input hooks and stops after them: every
input event must fall within what its timeline covers. It runs whenever
anything is captured, since exclusions need it even when app_focus itself
has no consent (then nothing of it is stored).
"""

from __future__ import annotations

import time

from cleartrace.capture.base import Backend, Sink
from cleartrace.capture.timeline import FocusTimeline
from cleartrace.categories import Category
from cleartrace.events import CATEGORY_OF_KIND

__all__ = ["Hooks"]


class Hooks:
    """What is hooked on `backend` now. Not thread-safe: the recorder's lock."""

    def __init__(self, backend: Backend, sink: Sink, timeline: FocusTimeline) -> None:
        self._backend, self._sink, self._timeline = backend, sink, timeline
        self._mouse: tuple[bool, bool, bool] | None = None
        self._keyboard = False
        #: None: the focus is not watched; else whether titles are read.
        self.titles: bool | None = None
        self._live: frozenset[Category] = frozenset()  # what the installed hooks capture
        self._closed = False  # the recording ended: nothing is installed again

    def reconcile(self, active: frozenset[Category]) -> frozenset[int]:
        """Install exactly the hooks `active` allows and remove the rest; the
        event kinds whose hooks went, stamped up to now (what they delivered
        but is not written yet must never be written).

        Raises:
            DisplayUnavailable: a hook cannot be installed.
        """
        if self._closed:  # a resume or reload answered as the recorder stopped
            active = frozenset()
        backend, sink = self._backend, self._sink
        titles = Category.WINDOW_TITLES in active if active else None
        if titles != self.titles and titles is not None:
            backend.start_focus(self._timeline, titles=titles)
        if (Category.KEYS in active) != self._keyboard:
            if self._keyboard:
                backend.stop_keyboard()
            else:
                backend.start_keyboard(sink)
            self._keyboard = not self._keyboard
        flags = (
            Category.MOUSE_MOVE in active,
            Category.CLICKS in active,
            Category.SCROLL in active,
        )
        wanted = flags if any(flags) else None
        if wanted != self._mouse:
            if self._mouse is not None:
                backend.stop_mouse()
            if wanted is not None:
                backend.start_mouse(sink, moves=flags[0], clicks=flags[1], scrolls=flags[2])
            self._mouse = wanted
        if titles != self.titles and titles is None:
            backend.stop_focus()
        self.titles = titles
        # Context of a category gone stops queueing before the writer drops what it holds.
        self._timeline.context.allow(active, time.monotonic_ns())
        gone, self._live = self._live - active, active
        if Category.WINDOW_TITLES in gone:  # a FOCUS event may carry a title
            gone |= {Category.APP_FOCUS}
        return frozenset(int(k) for k, c in CATEGORY_OF_KIND.items() if c in gone)

    def restart_focus_if_dead(self) -> bool:
        """Start the focus watcher again if it should run and does not (its X
        connection failed); whether it had to.

        Raises:
            DisplayUnavailable: no new one can start.
        """
        if self.titles is None or "focus" in self._backend.hooks():
            return False
        self._backend.start_focus(self._timeline, titles=self.titles)
        return True

    def close(self) -> None:
        """Remove every hook (the backend's `close`); none is installed again."""
        self._closed = True
        self._backend.close()
        self._keyboard, self._mouse, self.titles = False, None, None
