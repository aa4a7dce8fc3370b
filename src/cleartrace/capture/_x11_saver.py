"""Whether the X screen saver is on: the sign, where a locker uses it
(xscreensaver, light-locker, XSecureLock's saver mode), that the screen is
locked.

A locked screen ends the session, and what is typed at the lock screen (the
password that unlocks it) is never kept: the recorder asks this on every tick.
The first question opens a connection of its own, asks MIT-SCREEN-SAVER for
its notify events and then its state (QueryInfo, one round trip); later
questions only read the events that came since, without waiting (a round
trip on every tick was most of what the recorder cost while nothing
happened). A display without the extension, or one that fails, answers "not
locked" — the idle boundary still ends the session.

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import logging
from typing import Any

from cleartrace.capture.display import check_display

__all__ = ["ScreenSaver"]

log = logging.getLogger(__name__)

_ON, _CYCLE = 1, 2  # ScreenSaverOn, ScreenSaverCycle
_NOTIFY_MASK = 1  # ScreenSaverNotifyMask: its turning on and off


class ScreenSaver:
    """Asks the X server whether its screen saver is on. One owner thread."""

    def __init__(self) -> None:
        self._display: Any = None
        self._usable = True
        self._on = False  # as the last event (or the first question) said
        self._notify = -1  # the ScreenSaverNotify event's code on this display

    def on(self) -> bool:
        """Whether the screen saver is on now; False when it cannot be told."""
        if not self._usable:
            return False
        try:
            if self._display is None:
                from Xlib.display import Display

                check_display()  # python-xlib leaks the socket of a failed connection
                display = Display()
                extension = display.query_extension("MIT-SCREEN-SAVER")
                if extension is None:
                    display.close()
                    log.info("the display has no MIT-SCREEN-SAVER: a lock is not seen")
                    self._usable = False
                    return False
                root = display.screen().root
                # Events asked for first: a change after the question is not missed.
                root.screensaver_select_input(_NOTIFY_MASK)
                self._on = int(root.screensaver_query_info().state) in (_ON, _CYCLE)
                self._display, self._notify = display, extension.first_event
            display = self._display
            for _ in range(display.pending_events()):  # reads what came, never waits
                event = display.next_event()
                if event.type == self._notify and not event.send_event:  # not a client's
                    self._on = int(event.state) in (_ON, _CYCLE)
            return self._on
        except Exception as exc:  # the display went away: not known, so not locked
            log.warning("cannot ask the screen saver's state: %s", type(exc).__name__)
            # A connection that broke is opened again once; one that cannot be
            # opened is not tried again (and not logged on every tick).
            self._usable = self._display is not None
            self.close()
            return False

    def close(self) -> None:
        """Close the connection, if open; the next question opens another."""
        display, self._display = self._display, None
        if display is not None:
            try:
                display.close()
            except Exception as exc:  # closing a broken connection: nothing to do
                log.debug("closing the screen saver connection: %s", type(exc).__name__)
