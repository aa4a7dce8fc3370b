"""A global hotkey that pauses and resumes recording (default Ctrl+Alt+Shift+P).

It is a keyboard listener of its own (pynput's `GlobalHotKeys`), independent of
the recorder's hooks, so it works while recording is paused, when every hook
of the recorder is gone. It sees key presses only to match the combination;
it stores nothing. While recording, the recorder does record the hotkey's own
key presses like any others, up to the moment it pauses.

pynput is imported, and listeners started and stopped, on helper threads after
the display has been checked: pynput touches the display at import time and
may wait on the X server, which the GUI thread must never do. A failure is
logged and reported through `failed`, never raised: a missing hotkey must not
stop the tray.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from PySide6.QtCore import QObject, Signal

# The X11 backend's listener life (a start with a deadline, a stop that ends
# the thread even on an idle display) is exactly what a hotkey listener needs.
from cleartrace.capture._x11 import _Hook
from cleartrace.capture.display import check_display
from cleartrace.errors import DisplayUnavailable

__all__ = ["DEFAULT_HOTKEY", "PauseHotkey"]

log = logging.getLogger(__name__)

#: In pynput's `HotKey.parse` notation.
DEFAULT_HOTKEY = "<ctrl>+<alt>+<shift>+p"


class PauseHotkey(QObject):
    """`start()` installs the hotkey in the background; then `ready` (installed,
    or removed as asked) or `failed(reason)` is emitted, and `activated` on each
    press. All arrive on the GUI thread: Qt queues signals emitted from other
    threads to a receiver living there."""

    activated = Signal()
    ready = Signal()
    failed = Signal(str)

    def __init__(
        self,
        combination: str = DEFAULT_HOTKEY,
        *,
        env: Mapping[str, str] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.combination = combination
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._lock = threading.Lock()
        self._hook: _Hook | None = None
        self._generation = 0  # each start() is one; a stale install undoes itself
        self._workers: list[threading.Thread] = []

    def start(self, combination: str | None = None) -> None:
        """(Re)install the hotkey, `combination` instead of the current one if
        given ("" for none); returns at once."""
        with self._lock:
            if combination is not None:
                self.combination = combination
            self._generation += 1
            job = (self._generation, self._hook, self.combination)
            self._hook = None
            self._workers = [w for w in self._workers if w.is_alive()]
            worker = threading.Thread(
                target=self._install, args=job, name="cleartrace-hotkey", daemon=True
            )
            self._workers.append(worker)
        worker.start()

    def _install(self, generation: int, old: _Hook | None, combination: str) -> None:
        if old is not None:
            old.stop()
        if not combination:
            self.ready.emit()
            return
        hook = _Hook("hotkey", ["hotkey"])
        try:
            check_display(self._env)
            from pynput import keyboard

            hook.start(keyboard.GlobalHotKeys({combination: lambda: self._pressed(hook)}))
        except DisplayUnavailable as exc:
            self._fail(generation, str(exc))
            return
        except Exception as exc:  # pynput cannot load, or a bad combination
            self._fail(generation, f"the hotkey could not be installed ({type(exc).__name__})")
            return
        with self._lock:
            current = generation == self._generation
            if current:
                self._hook = hook
        if not current:  # stop() or another start() came meanwhile
            hook.stop()
            return
        log.info("pause hotkey installed")
        self.ready.emit()

    def _fail(self, generation: int, reason: str) -> None:
        log.warning("no pause hotkey: %s", reason)
        if generation == self._generation:  # else a later start() or stop() decides
            self.failed.emit(reason)

    def _pressed(self, hook: _Hook) -> None:
        if hook.switch.on and hook is self._hook:
            self.activated.emit()

    def stop(self, timeout: float = 8.0) -> None:
        """Remove the hotkey; returns once every listener thread has ended. Idempotent."""
        with self._lock:
            self._generation += 1
            hook, self._hook = self._hook, None
            workers = list(self._workers)
        if hook is not None:
            hook.stop()
        for worker in workers:
            worker.join(timeout)  # a worker that installs now stops what it made
