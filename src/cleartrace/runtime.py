"""What runs while ClearTrace records: the recorder, its control socket and the
background uploads, with one life for `cleartrace record` and the tray.

`cleartrace record` records in its own (main) thread, so that SIGINT and
SIGTERM reach it (`record`); the tray records on a thread of the runtime's
(`start`) and asks its state from the worker thread. Either way the control
socket serves the recorder for exactly as long as it runs, and uploads run
beside it while the device is enrolled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cleartrace.capture.base import Backend
from cleartrace.capture.display import display_support
from cleartrace.control import ControlServer
from cleartrace.errors import ClearTraceError, UsageError
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.recorder import Recorder
from cleartrace.status import RecorderStatus, UploadStatus
from cleartrace.store.keys import Keys

if TYPE_CHECKING:
    from cleartrace.upload.background import BackgroundUploader

__all__ = ["Runtime", "serve"]

log = logging.getLogger(__name__)


def serve(recorder: Recorder, req: dict[str, Any]) -> dict[str, Any]:
    """Serve one control request to `recorder` (on the control thread).

    Raises:
        UsageError: an unknown command or a bad argument; the reply says which.
    """
    cmd = req.get("cmd")
    if cmd == "ping":
        return {}
    if cmd == "status":
        return {"status": recorder.status().to_json()}
    if cmd == "pause":
        seconds = req.get("for_s")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            raise UsageError("a pause needs a positive number of seconds")
        recorder.pause(None if seconds is None else float(seconds))
        return {"status": recorder.status().to_json()}
    if cmd == "resume":
        recorder.resume()
        return {"status": recorder.status().to_json()}
    if cmd == "forget":
        seconds = req.get("seconds")
        if not isinstance(seconds, int | float) or seconds <= 0:
            raise UsageError("forgetting needs a positive number of seconds")
        return recorder.forget(float(seconds)).as_json()
    if cmd == "end":
        ended = recorder.end_session()
        session_id, kept = (None, None) if ended is None else ended
        return {"ended": session_id, "kept": kept}
    if cmd == "reload":
        recorder.reload()
        return {"status": recorder.status().to_json()}
    raise UsageError(f"unknown control command '{cmd}'")


class Runtime:
    """The recorder (at most one at a time), its control socket and the uploads
    of one home. Thread-safe; `close()` is idempotent."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._recorder: Recorder | None = None
        self._thread: threading.Thread | None = None
        #: Why the last recording ended or could not start (None: it did not fail).
        self._failure: str | None = None
        self._uploads: BackgroundUploader | None = None
        self._uploading = 0  # upload passes running now
        self._busy_lock = threading.Lock()
        #: Whether the session the last recording closed as it stopped was kept
        #: (False: nothing was typed, clicked or scrolled in it); None: none closed.
        self.last_kept: bool | None = None

    # -- recording ----------------------------------------------------------------

    def record(self, home: Home, backend: Backend, duration: float | None = None) -> None:
        """Record into `home` in this thread until `stop()` or `duration` seconds,
        serving the control socket meanwhile.

        Raises:
            NoConsent: no category has consent.
            RecorderError: another recorder owns this home.
            StoreError: the store failed (e.g. DiskFull); what was flushed stays.
        """
        recorder = Recorder(home, backend)
        control = ControlServer(self.paths.socket, lambda req: serve(recorder, req))
        try:
            with self._lock:
                self._recorder = recorder
            if self._stopping.is_set():  # a signal came before the recorder existed
                recorder.stop()
            recorder.run(duration)
        finally:
            self.last_kept = recorder.kept
            control.close()

    def start(self, backend_factory: Callable[[], Backend], env: Mapping[str, str]) -> None:
        """Record on a thread of its own (the tray), in a home of its own, and
        return once the hooks are installed. Never raises for "cannot record":
        `failure` says why (Wayland, no display, a store error)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            ok, detail = display_support(env)
            if not ok:
                self._failure = detail
                return
            self._failure = None
            self._stopping.clear()
            self._recorder = None  # the last recording's, stopped
            home = Home.open(self.paths, create=True)
            backend = backend_factory()
            thread = threading.Thread(
                target=self._run, args=(home, backend), name="cleartrace-recorder", daemon=True
            )
            self._thread = thread
            thread.start()
        self._wait_running(thread)

    def _run(self, home: Home, backend: Backend) -> None:
        try:
            self.record(home, backend)
        except ClearTraceError as exc:
            self._failure = str(exc)
            log.warning("the recorder stopped: %s", type(exc).__name__)
        except Exception as exc:  # a bug: keep the tray honest, say it cannot record
            self._failure = f"the recorder failed ({type(exc).__name__})"
            log.error("the recorder failed: %s", type(exc).__name__)
        finally:
            home.close()

    def _wait_running(self, thread: threading.Thread, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and thread.is_alive():
            recorder = self._recorder
            if recorder is not None and recorder.status().hooks:
                return  # installed: what is typed now is captured
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask the recording to end; safe from signal handlers and other threads."""
        self._stopping.set()
        recorder = self._recorder
        if recorder is not None:
            recorder.stop()

    @property
    def alive(self) -> bool:
        """Whether this runtime's own recorder thread runs (`start`)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def failure(self) -> str | None:
        """Why recording stopped or could not start, or None."""
        return self._failure

    def running(self) -> Recorder:
        """The recorder running on this runtime's thread.

        Raises:
            UsageError: nothing is being recorded here.
        """
        recorder = self._recorder
        if recorder is None or not self.alive:
            raise UsageError("nothing is being recorded")
        return recorder

    def recorder_status(self) -> RecorderStatus | None:
        """The running recorder's own status; None when none runs here."""
        recorder = self._recorder
        return recorder.status() if recorder is not None and self.alive else None

    # -- uploads -----------------------------------------------------------------------

    def start_uploads(self, keys: Keys, interval: float | None = None) -> None:
        """Upload in the background every `interval` seconds (by default
        `UPLOAD_INTERVAL`) while enrolled."""
        # Imported here: the uploader needs pyarrow and requests, which the CLI's
        # other commands must not pay for on start.
        from cleartrace.upload.background import UPLOAD_INTERVAL, BackgroundUploader

        if interval is None:
            interval = UPLOAD_INTERVAL
        with self._lock:
            if self._uploads is None:
                self._uploads = BackgroundUploader(
                    self.paths, keys, interval=interval, on_busy=self._busy
                )
                self._uploads.start()

    def _busy(self, busy: bool) -> None:
        with self._busy_lock:
            self._uploading += 1 if busy else -1

    def wake_uploads(self) -> bool:
        """Run an upload pass now; False when no uploads run (`start_uploads`)."""
        uploads = self._uploads
        if uploads is None:
            return False
        uploads.wake()
        return True

    def upload_status(self, queue: int) -> UploadStatus:
        """The uploads' part of the status; `queue` is what waits in the store."""
        uploads = self._uploads
        if uploads is None:
            return UploadStatus(queue=queue, uploading=self._uploading > 0)
        return UploadStatus(
            queue=queue,
            uploading=self._uploading > 0,
            problem=uploads.last_error,
            passes=uploads.passes,
            sessions_uploaded=uploads.sessions_uploaded,
        )

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop uploads and the recorder (its session is flushed and closed)."""
        uploads, self._uploads = self._uploads, None
        if uploads is not None:
            uploads.stop()
        self.stop()
        # Joined outside the lock: the recorder thread takes it to register
        # its recorder, and must be able to, to see that it is to stop.
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=15)
        with self._lock:
            self._recorder = self._thread = None
