"""Service calls off the GUI thread, results back on it.

One worker thread runs the calls in order (the service is not meant to be
used from two threads at once); each call's result or error comes back to
the GUI thread through a queued Qt signal and is handed to the callbacks
given with it. A window that closes before its answer arrives is fine: its
callbacks are simply not called once it is gone (`owner`).
"""

from __future__ import annotations

import itertools
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
    run later on the GUI thread.

    Every reference that may lead to a widget (the callbacks, the owner, and
    `fn`, whose closure may hold one) stays in `_calls`, which only the GUI
    thread touches: the worker drops its own reference to `fn` before it
    reports back, so the last reference to a widget never dies on the worker
    thread, where Qt cannot delete it safely.
    """

    _finished = Signal(int, object, object)  # token, result, error message

    def __init__(self, service: Service, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._jobs: queue.Queue[tuple[int, Callable[[Service], Any]] | None] = queue.Queue()
        self._calls: dict[int, _Job] = {}
        self._tokens = itertools.count()
        self._finished.connect(self._deliver)
        self._thread = threading.Thread(target=self._work, name="cleartrace-ui-worker", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Calls queued or running whose answer has not been delivered yet."""
        return len(self._calls)

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
        token = next(self._tokens)
        self._calls[token] = (fn, on_done, on_error, owner)
        self._jobs.put((token, fn))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            token, fn = job
            del job
            try:
                result, error = fn(self.service), None
            except ClearTraceError as exc:
                result, error = None, str(exc)
            except Exception as exc:  # a bug: the message may hold content, so only its type
                log.error("a tray action failed: %s", type(exc).__name__)
                result, error = None, f"unexpected error ({type(exc).__name__})"
            del fn  # `_calls` still holds it: it is released on the GUI thread
            self._finished.emit(token, result, error)
            del result

    @Slot(int, object, object)
    def _deliver(self, token: int, result: Any, error: str | None) -> None:
        _fn, on_done, on_error, owner = self._calls.pop(token)
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
