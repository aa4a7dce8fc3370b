"""What the tray app drives: one open home and its runtime, and the actions
over them, in plain blocking calls.

Qt-free on purpose. The UI calls a `Service` only from its worker thread (the
GUI thread never does disk, crypto or X I/O). Every method is one action
(cleartrace.actions), the same the CLI's commands call; what stays here is
what the tray holds across calls: the home, opened once, and the `Runtime`
with its recorder thread and background uploads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from cleartrace.actions import consent, ledger, recording, sessions, settings, status
from cleartrace.actions.ledger import LedgerView
from cleartrace.actions.sessions import SessionReview
from cleartrace.capture.base import Backend
from cleartrace.capture.select import backend as default_backend
from cleartrace.categories import Category, PiiCategory
from cleartrace.consent.policy import Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import ConsentStatus
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.redaction import Forgotten, Selection
from cleartrace.runtime import Runtime
from cleartrace.status import RecorderState, Status
from cleartrace.store.reading import SessionInfo
from cleartrace.store.redaction import Redaction
from cleartrace.upload.uploader import require_enrolment

__all__ = ["Service"]


class Service:
    """One home, its runtime (a recorder once there is consent, uploads) and
    the actions the tray's windows take on them."""

    def __init__(
        self,
        paths: Paths,
        *,
        backend_factory: Callable[[], Backend] = default_backend,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.paths = paths
        self._runtime = Runtime(paths)
        self._backend_factory = backend_factory
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._home: Home | None = None

    # -- life ---------------------------------------------------------------------

    def home(self) -> Home:
        """The home, opened (and created) on first use."""
        if self._home is None:
            self._home = Home.open(self.paths, create=True)
        return self._home

    def start(self) -> None:
        """Start the recorder if there is consent and a display; never raises for
        "cannot record" (the status says why)."""
        recording.start(self.home(), self._runtime, self._backend_factory, self._env)

    def start_uploads(self, interval: float | None = None) -> None:
        """Upload in the background every `interval` seconds (by default
        `UPLOAD_INTERVAL`) while enrolled."""
        self._runtime.start_uploads(self.home().keys, interval)

    def upload_soon(self) -> None:
        """Run an upload pass now, in the background (the status shows it).

        Raises:
            UsageError: not enrolled: nothing would be uploaded.
        """
        require_enrolment(self.paths)
        self.start_uploads()
        self._runtime.wake_uploads()

    def close(self) -> bool:
        """Stop uploads and the recorder (its session is flushed and closed), close
        the home. Returns False when that session was not kept (it had no input)."""
        self._runtime.close()
        if self._home is not None:
            self._home.close()
            self._home = None
        return self._runtime.last_kept is not False

    @property
    def runtime(self) -> Runtime:
        """The recorder thread and uploads this service runs."""
        return self._runtime

    @property
    def recording_thread_alive(self) -> bool:
        return self._runtime.alive

    # -- state ----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The policy in force, read each time: enrolling (from the CLI, say)
        installs another while the tray runs.

        Raises:
            PolicyRefused: the installed policy does not verify.
        """
        return active_policy(self.paths)

    def snapshot(self) -> Status:
        """The current state; reads the store, so call it off the GUI thread."""
        return status.collect(self.paths, self._env, runtime=self._runtime, home=self.home())

    def consent(self) -> dict[Category, ConsentStatus]:
        current = consent.current(self.home().ledger, self.policy)
        return {c: current.status(c) for c in Category}

    # -- consent ----------------------------------------------------------------------

    def give(self, categories: Iterable[Category]) -> None:
        """Consent to `categories` (ledgered), then record if anything is given."""
        consent.give(self.home(), categories)
        self.start()

    def refuse(self, categories: Iterable[Category]) -> None:
        """Refuse `categories` (ledgered); only ones not given (withdraw the others)."""
        consent.refuse(self.home(), categories, skip_given=True)

    def withdraw(
        self, categories: Iterable[Category], *, delete_sessions: bool = False
    ) -> list[Category]:
        """Withdraw (ledgered), and with `delete_sessions` delete every local session too."""
        done = consent.withdraw(self.home(), categories, delete_sessions=delete_sessions)
        return done.withdrawn

    # -- recording ------------------------------------------------------------------------

    def pause(self, seconds: float | None) -> None:
        recording.pause(self.paths, seconds, self._runtime)

    def resume(self) -> None:
        recording.resume(self.paths, self._runtime)

    def toggle(self) -> RecorderState:
        """Pause a recording or resume a pause; returns the new state."""
        return recording.toggle(self.snapshot().state, self.paths, self._runtime)

    def end_session(self) -> recording.Ended | None:
        """End the session being recorded (here or by `cleartrace record`);
        None when none was open."""
        return recording.end_session(self.paths, self._runtime)

    def forget(self, seconds: float) -> Forgotten:
        """Remove the last `seconds` from every session, the running one included;
        returns how many events went, from how many sessions of each state."""
        return recording.forget(self.paths, seconds, self._runtime, self.home())

    # -- review ------------------------------------------------------------------------------

    def sessions(self) -> list[tuple[SessionInfo, int | None]]:
        """Every session with when it approves itself (None: not pending)."""
        return sessions.list_sessions(self.home())

    def review(self, session_id: str) -> SessionReview:
        return sessions.review(self.home(), session_id)

    def select_span(self, session_id: str, stream: int, start: int, end: int) -> Selection:
        return sessions.select_span(self.home(), session_id, stream, start, end)

    def select_time(self, session_id: str, start_ns: int, end_ns: int) -> Selection:
        return sessions.select_time(self.home(), session_id, start_ns, end_ns)

    def select_pii(
        self, session_id: str, categories: Iterable[PiiCategory] | None = None
    ) -> Selection:
        return sessions.select_pii(self.home(), session_id, categories)

    def redact(self, selection: Selection) -> Redaction:
        return sessions.redact(self.home(), selection)

    def release_detection(self, session_id: str, stream: int, start: int, end: int) -> None:
        sessions.release_detection(self.home(), session_id, stream, start, end)

    def approve(self, session_id: str) -> bool:
        return sessions.approve(self.home(), session_id)[1]

    def hold(self, session_id: str) -> bool:
        return sessions.hold(self.home(), session_id)[1]

    def delete(self, session_id: str) -> None:
        sessions.delete(self.home(), session_id)

    # -- history and settings --------------------------------------------------------------------

    def ledger(self) -> LedgerView:
        return ledger.view(self.home())

    def hold_days(self) -> int:
        return settings.hold_days(self.paths)

    def set_hold_days(self, days: int) -> None:
        settings.set_hold_days(self.paths, days)

    def session_minutes(self) -> int:
        return settings.current(self.paths).session_minutes

    def set_session_minutes(self, minutes: int) -> None:
        settings.set_session_minutes(self.paths, minutes)

    def min_inputs(self) -> int:
        """The fewest inputs a session needs to be kept (0: every session)."""
        return settings.current(self.paths).min_inputs

    def set_min_inputs(self, count: int) -> None:
        settings.set_min_inputs(self.paths, count)

    def pause_hotkey(self) -> str:
        """The pause hotkey chosen ("" for none)."""
        return settings.pause_hotkey(self.paths)

    def set_pause_hotkey(self, sequence: str) -> None:
        settings.set_pause_hotkey(self.paths, sequence)

    def exclusions(self) -> list[tuple[str, str]]:
        """(application class, "default" or "personal")."""
        return settings.exclusions_of(self.home())

    def exclude(self, app: str) -> str:
        return settings.exclude(self.home(), app)

    def include(self, app: str) -> str:
        return settings.include(self.home(), app)

    def open_window_classes(self) -> list[str]:
        return settings.open_window_classes(self._env)
