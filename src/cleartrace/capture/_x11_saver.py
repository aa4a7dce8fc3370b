"""Whether the X screen saver is on: the sign, where a locker uses it
(xscreensaver, light-locker, XSecureLock's saver mode), that the screen is
locked.

A locked screen ends the session, and what is typed at the lock screen (the
password that unlocks it) is never kept: the recorder asks this on every tick.
MIT-SCREEN-SAVER's QueryInfo is one round trip on a connection of its own,
opened at the first question. A display without the extension, or one that
fails, answers "not locked" — the idle boundary still ends the session.

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import logging
from typing import Any

from cleartrace.capture.display import check_display

__all__ = ["ScreenSaver"]

log = logging.getLogger(__name__)

_ON, _CYCLE = 1, 2  # ScreenSaverOn, ScreenSaverCycle


class ScreenSaver:
    """Asks the X server whether its screen saver is on. One owner thread."""

    def __init__(self) -> None:
        self._display: Any = None
        self._usable = True

    def on(self) -> bool:
        """Whether the screen saver is on now; False when it cannot be told."""
        if not self._usable:
            return False
        try:
            if self._display is None:
                from Xlib.display import Display

                check_display()  # python-xlib leaks the socket of a failed connection
                display = Display()
                if not display.has_extension("MIT-SCREEN-SAVER"):
                    display.close()
                    log.info("the display has no MIT-SCREEN-SAVER: a lock is not seen")
                    self._usable = False
                    return False
                self._display = display
            info = self._display.screen().root.screensaver_query_info()
            return int(info.state) in (_ON, _CYCLE)
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
