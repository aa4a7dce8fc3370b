"""Upload passes on a timer, on their own thread, while the device is enrolled.

The recorder's runtime (runtime.py) runs one for `cleartrace record` and for
the tray; `cleartrace upload --now` runs one pass in the foreground instead.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from cleartrace.errors import ClearTraceError, UploadBusy
from cleartrace.paths import Paths
from cleartrace.store.keys import Keys
from cleartrace.upload.enrolment import load_enrolment
from cleartrace.upload.uploader import Retry, Uploader

__all__ = ["UPLOAD_INTERVAL", "BackgroundUploader"]

log = logging.getLogger(__name__)

#: Seconds between background upload passes while enrolled.
UPLOAD_INTERVAL = 600.0


class BackgroundUploader:
    """Runs `Uploader.run` every `interval` seconds on its own thread while enrolled.

    A failed pass is tried again after an exponentially growing, jittered wait
    (capped at `interval`); `on_busy(True/False)` brackets each pass, which is
    what the tray's "uploading" icon shows.
    """

    def __init__(
        self,
        paths: Paths,
        keys: Keys,
        *,
        interval: float = UPLOAD_INTERVAL,
        on_busy: Callable[[bool], None] | None = None,
    ) -> None:
        self._uploader = Uploader(paths, keys, retry=Retry(attempts=1))
        self._paths = paths
        self._interval = interval
        self._on_busy = on_busy
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cleartrace-upload", daemon=True)
        #: Passes finished so far, sessions they uploaded, why the last one failed.
        self.passes = 0
        self.sessions_uploaded = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self) -> None:
        """Run a pass now (e.g. after the person approved a session)."""
        self._wake.set()

    def _loop(self) -> None:
        failures = 0
        rng = random.Random()  # noqa: S311 - jitter, not a secret
        while not self._stop.is_set():
            wait = self._interval
            if self._on_busy is not None:
                self._on_busy(True)
            try:
                if load_enrolment(self._paths) is not None:
                    report = self._uploader.run()
                    self.sessions_uploaded += len(report.sessions)
                    self.passes += 1
                failures, self.last_error = 0, None
            except UploadBusy:
                wait = min(self._interval, 30.0)  # the other pass does the work; look again soon
            except Exception as exc:  # this thread must outlive any one failed pass
                failures += 1
                self.passes += 1
                self.last_error = (
                    str(exc)
                    if isinstance(exc, ClearTraceError)
                    else f"the upload failed ({type(exc).__name__}); it is tried again later"
                )
                wait = rng.uniform(0, min(self._interval, 5.0 * 2**failures))
                # The tooltip's own words (a ClearTraceError names the object and
                # the fix, e.g. the TLS hint, never content): a headless recorder's
                # log is where its person looks.
                log.warning(
                    "background upload failed: %s; next try in %.0f s", self.last_error, wait
                )
            finally:
                if self._on_busy is not None:
                    self._on_busy(False)
            self._wake.wait(wait)
            self._wake.clear()
