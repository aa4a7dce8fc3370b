"""Service calls off the GUI thread, results back on it.

One worker thread runs the calls in order (the service is not meant to be
used from two threads at once); each call's result or error comes back to
the GUI thread through a queued Qt signal and is handed to the callbacks
given with it. A window that closes before its answer arrives is fine: its
callbacks are simply not called once it is gone (`owner`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal, Slot
from shiboken6 import isValid

from cleartrace.errors import ClearTraceError
from cleartrace.service import Service

__all__ = ["Runner"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Job = tuple[
    Callable[[Service], Any],
    Callable[[Any], None] | None,
    Callable[[str], None] | None,
    QObject | None,
]


class Runner(QObject):
    """Runs `fn(service)` on the worker thread; `on_done(result)` or `on_error(message)`
    run later on the GUI thread."""

    _finished = Signal(object, object, object)  # job, result, error message

    def __init__(self, service: Service, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._finished.connect(self._deliver)
        self.pending = 0  # calls queued and not yet delivered; GUI thread only
        self._thread = threading.Thread(target=self._work, name="cleartrace-ui-worker", daemon=True)
        self._thread.start()

    def call(
        self,
        fn: Callable[[Service], T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        *,
        owner: QObject | None = None,
    ) -> None:
        """Queue `fn(service)`; errors reach `on_error` as one line for the person
        (a ClearTrace error's own message, else only the exception's type)."""
        self.pending += 1
        self._jobs.put((fn, on_done, on_error, owner))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn = job[0]
            try:
                result, error = fn(self.service), None
            except ClearTraceError as exc:
                result, error = None, str(exc)
            except Exception as exc:  # a bug: the message may hold content, so only its type
                log.exception("a tray action failed")
                result, error = None, f"unexpected error ({type(exc).__name__})"
            self._finished.emit(job, result, error)

    @Slot(object, object, object)
    def _deliver(self, job: _Job, result: Any, error: str | None) -> None:
        _fn, on_done, on_error, owner = job
        self.pending -= 1
        if owner is not None and not isValid(owner):
            return
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.warning("a tray action failed: %s", error)

    def stop(self, timeout: float = 20.0) -> None:
        """Finish queued calls, then close the service (the recorder flushes)."""
        self._jobs.put(None)
        self._thread.join(timeout)
        self.service.close()
