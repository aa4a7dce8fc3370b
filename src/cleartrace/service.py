"""What the tray app drives: the recorder on its own thread, and every question
and act of its windows, in plain blocking calls.

Qt-free on purpose. The UI calls a `Service` only from its worker thread (the
GUI thread never does disk, crypto or X I/O); the recorder runs on threads of
its own and is reached through its thread-safe methods. Everything here is
what the CLI can do too, through the same domain functions.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cleartrace import preferences
from cleartrace.capture.base import Backend
from cleartrace.capture.display import display_support
from cleartrace.capture.select import backend as default_backend
from cleartrace.categories import Category, PiiCategory
from cleartrace.consent import exclusions, state
from cleartrace.consent.exclusions import PersonalExclusions
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.verify import VerifyReport, verify_export
from cleartrace.errors import ClearTraceError, LedgerBroken, PolicyRefused, UsageError
from cleartrace.events import Event
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.recorder import Recorder
from cleartrace.review import approval, redaction
from cleartrace.review.activity import MinuteActivity, activity_per_minute
from cleartrace.review.pii import Finding, detect
from cleartrace.review.text import Stream, reconstruct
from cleartrace.store.keys import describe_keystore
from cleartrace.store.reading import SessionInfo
from cleartrace.store.redaction import Redaction
from cleartrace.store.session_state import SessionState
from cleartrace.upload.enrolment import load_enrolment
from cleartrace.upload.uploader import UPLOAD_INTERVAL, BackgroundUploader, require_enrolment

__all__ = ["LedgerView", "Service", "SessionReview", "Snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the tray shows at a glance; no captured content but the app class.

    `state` is "recording", "paused", "off" (no consent, or all withdrawn) or
    "cannot record" (`reason` says why: Wayland, no display, a store error).
    """

    state: str
    reason: str | None
    paused_until: str | None
    hooks: tuple[str, ...]
    granted: frozenset[Category]
    consent_asked: bool
    application: str | None
    excluded_now: bool
    session_counts: dict[str, int]
    today_counts: dict[str, int]
    pending_review: int
    #: Days a finished session waits for review before it approves itself.
    hold_days: int
    key_storage: dict[str, str] | None
    home: str
    #: The collector this device uploads to; None: not enrolled, nothing leaves.
    collector: str | None = None
    #: Approved sessions waiting to leave.
    upload_queue: int = 0
    uploading: bool = False
    #: Why the last upload pass failed (the bundle stays queued), or None.
    upload_problem: str | None = None
    #: Upload passes finished since the app started, and the sessions they sent.
    upload_passes: int = 0
    sessions_uploaded: int = 0


@dataclass(frozen=True, slots=True)
class SessionReview:
    """One session as the review window shows it."""

    info: SessionInfo
    started_ns: int
    anchor_mono_ns: int
    events: list[Event] = field(repr=False)
    streams: list[Stream] = field(repr=False)
    findings: list[list[Finding]] = field(repr=False)
    activity: list[MinuteActivity]
    redactions: list[Redaction]
    auto_approve_ns: int | None

    def wall_ns(self, t_ns: int) -> int:
        """A monotonic event time on the wall clock."""
        return self.started_ns + t_ns - self.anchor_mono_ns


@dataclass(frozen=True, slots=True)
class LedgerView:
    """The consent history and whether it verifies (`broken_at` is the first bad record)."""

    records: list[dict[str, Any]]
    verified: bool
    broken_at: int | None
    reason: str | None


class Service:
    """One home, its recorder (once there is consent) and the review operations."""

    def __init__(
        self,
        paths: Paths,
        *,
        backend_factory: Callable[[], Backend] = default_backend,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.paths = paths
        self._backend_factory = backend_factory
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._home: Home | None = None
        self._recorder: Recorder | None = None
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._uploads: BackgroundUploader | None = None
        self._uploading = 0  # upload passes running now
        self._busy_lock = threading.Lock()

    # -- life ---------------------------------------------------------------------

    def home(self) -> Home:
        """The home, opened (and created) on first use."""
        if self._home is None:
            self._home = Home.open(self.paths, create=True)
        return self._home

    def start(self) -> None:
        """Start the recorder if there is consent and a display; never raises for
        "cannot record" (the snapshot says why)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            granted = self._consent().granted()
            ok, detail = display_support(self._env)
            if not granted:
                return
            if not ok:
                self._failure = detail
                return
            rec_home = Home.open(self.paths, create=True)
            recorder = Recorder(rec_home, self._backend_factory())
            self._failure = None

            def run() -> None:
                try:
                    recorder.run()
                except ClearTraceError as exc:
                    self._failure = str(exc)
                    log.warning("the recorder stopped: %s", type(exc).__name__)
                except Exception as exc:  # a bug: keep the tray honest, say it cannot record
                    self._failure = f"the recorder failed ({type(exc).__name__})"
                    log.error("the recorder failed: %s", type(exc).__name__)
                finally:
                    rec_home.close()

            self._recorder = recorder
            self._thread = threading.Thread(target=run, name="cleartrace-recorder", daemon=True)
            self._thread.start()
            self._wait_running(recorder)

    def _wait_running(self, recorder: Recorder, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread is not None and self._thread.is_alive():
            if recorder.status()["hooks"]:  # installed: what is typed now is captured
                return
            time.sleep(0.02)

    def start_uploads(self, interval: float = UPLOAD_INTERVAL) -> None:
        """Upload in the background every `interval` seconds while enrolled."""
        with self._lock:
            if self._uploads is None:
                self._uploads = BackgroundUploader(
                    self.paths, self.home().keys, interval=interval, on_busy=self._busy
                )
                self._uploads.start()

    def _busy(self, busy: bool) -> None:
        with self._busy_lock:
            self._uploading += 1 if busy else -1

    def upload_soon(self) -> None:
        """Run an upload pass now, in the background (the snapshot shows it).

        Raises:
            UsageError: not enrolled: nothing would be uploaded.
        """
        require_enrolment(self.paths)
        self.start_uploads()
        if self._uploads is not None:
            self._uploads.wake()

    def close(self) -> None:
        """Stop uploads and the recorder (its session is flushed and closed), close the home."""
        if self._uploads is not None:
            self._uploads.stop()
            self._uploads = None
        with self._lock:
            if self._recorder is not None:
                self._recorder.stop()
            if self._thread is not None:
                self._thread.join(timeout=15)
            self._recorder = self._thread = None
            if self._home is not None:
                self._home.close()
                self._home = None

    @property
    def recording_thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- state ----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The policy in force, read each time: enrolling (from the CLI, say)
        installs another while the tray runs.

        Raises:
            PolicyRefused: the installed policy does not verify.
        """
        return active_policy(self.paths)

    def _consent(self, policy: Policy | None = None) -> state.ConsentState:
        policy = self.policy if policy is None else policy
        return state.consent_from_records(self.home().ledger.records(), policy)

    def snapshot(self) -> Snapshot:
        """The current state; reads the store, so call it off the GUI thread."""
        policy = self.policy  # read and verified once per snapshot
        consent = self._consent(policy)
        granted = consent.granted()
        rec = self._recorder.status() if self.recording_thread_alive and self._recorder else None
        sessions = self.home().store.list_sessions()
        today = _today_counts(sessions)
        pending = sum(1 for s in sessions if s.state == SessionState.PENDING)
        reason = self._failure
        if reason is None and not self.recording_thread_alive and granted:
            ok, detail = display_support(self._env)
            reason = None if ok else detail
        if reason is not None:
            current = "cannot record"
        elif rec is not None:
            current = rec["state"]
        else:
            current = "off"
        return Snapshot(
            state=current,
            reason=reason,
            paused_until=None if rec is None else rec["paused_until"],
            hooks=tuple(rec["hooks"]) if rec else (),
            granted=granted,
            consent_asked=any(
                consent.status(c) is not state.ConsentStatus.NOT_ASKED for c in Category
            ),
            application=None if rec is None else rec["application"],
            excluded_now=bool(rec and rec["excluded_now"]),
            session_counts={} if rec is None else dict(rec["counts"]),
            today_counts=today,
            pending_review=pending,
            hold_days=preferences.hold_days(self.paths, policy),
            key_storage=describe_keystore(self.paths),
            home=str(self.paths.home),
            **self._upload_state(sessions),
        )

    def _upload_state(self, sessions: list[SessionInfo]) -> dict[str, Any]:
        enrolment = load_enrolment(self.paths)
        uploads = self._uploads
        return {
            "collector": None if enrolment is None else enrolment.collector,
            "upload_queue": 0
            if enrolment is None
            else sum(
                1
                for s in sessions
                if s.state == SessionState.APPROVED and enrolment.may_upload(s.started_ns)
            ),
            "uploading": self._uploading > 0,
            "upload_problem": None if uploads is None else uploads.last_error,
            "upload_passes": 0 if uploads is None else uploads.passes,
            "sessions_uploaded": 0 if uploads is None else uploads.sessions_uploaded,
        }

    # -- consent ----------------------------------------------------------------------

    def consent(self) -> dict[Category, state.ConsentStatus]:
        current = self._consent()
        return {c: current.status(c) for c in Category}

    def give(self, categories: Iterable[Category]) -> list[Category]:
        """Consent to `categories` (ledgered), then record if anything is given."""
        given = state.give(self.home().ledger, frozenset(categories), self.policy)
        self.start()
        return given

    def refuse(self, categories: Iterable[Category]) -> list[Category]:
        """Refuse `categories` (ledgered); only ones not given (withdraw the others)."""
        current = self._consent().granted()
        return state.refuse(self.home().ledger, frozenset(categories) - current, self.policy)

    def withdraw(
        self, categories: Iterable[Category], *, delete_sessions: bool = False
    ) -> list[Category]:
        """Withdraw (ledgered; a running recorder drops those hooks within a tick),
        and with `delete_sessions` delete every local session too."""
        try:
            policy = self.policy
        except PolicyRefused:  # withdrawing is never blocked, not even by a broken policy
            policy = DEFAULT_POLICY
        withdrawn = state.withdraw(self.home().ledger, frozenset(categories), policy)
        if delete_sessions:
            for info in self.home().store.list_sessions():
                if info.state != SessionState.RECORDING:
                    self.delete(info.id)
        return withdrawn

    # -- recording ------------------------------------------------------------------------

    def _running(self) -> Recorder:
        if self._recorder is None or not self.recording_thread_alive:
            raise UsageError("nothing is being recorded")
        return self._recorder

    def pause(self, seconds: float | None) -> None:
        self._running().pause(seconds)

    def resume(self) -> None:
        self._running().resume()

    def forget(self, seconds: float) -> int:
        """Remove the last `seconds` from every session, the running one included."""
        if self._recorder is not None and self.recording_thread_alive:
            return self._recorder.forget(seconds)
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        home = self.home()
        return sum(r.count for r in redaction.forget_since(home.store, home.ledger, since))

    # -- review ------------------------------------------------------------------------------

    def sessions(self) -> list[tuple[SessionInfo, int | None]]:
        """Every session with when it approves itself (None: not pending)."""
        home = self.home()
        hold = self.hold_days()
        approval.settle(home.store, home.ledger, hold)
        return [(s, approval.auto_approve_at(s, hold)) for s in home.store.list_sessions()]

    def review(self, session_id: str) -> SessionReview:
        """Decrypt and analyse one session: text, findings, activity, markers."""
        store = self.home().store
        info = store.session(session_id)
        events = store.read_events(info.id)
        streams = reconstruct(events)
        findings = [
            detect(s.text, app=s.app, title=s.title, categories=self.policy.pii) for s in streams
        ]
        started, anchor = store.anchors(info.id)
        return SessionReview(
            info=info,
            started_ns=started,
            anchor_mono_ns=anchor,
            events=events,
            streams=streams,
            findings=findings,
            activity=activity_per_minute(events),
            redactions=store.redactions(info.id),
            auto_approve_ns=approval.auto_approve_at(info, self.hold_days()),
        )

    def select_span(
        self, session_id: str, stream: int, start: int, end: int
    ) -> redaction.Selection:
        events = self.home().store.read_events(session_id)
        return redaction.by_span(session_id, events, stream, start, end)

    def select_time(self, session_id: str, start_ns: int, end_ns: int) -> redaction.Selection:
        store = self.home().store
        return redaction.by_time(store, session_id, store.read_events(session_id), start_ns, end_ns)

    def select_pii(
        self, session_id: str, categories: Iterable[PiiCategory] | None = None
    ) -> redaction.Selection:
        events = self.home().store.read_events(session_id)
        chosen = self.policy.pii if categories is None else tuple(categories)
        return redaction.by_pii(session_id, events, chosen)

    def redact(self, selection: redaction.Selection) -> Redaction:
        """Remove what `selection` chose, for good (ledgered)."""
        home = self.home()
        return redaction.apply(home.store, home.ledger, selection)

    def approve(self, session_id: str) -> bool:
        home = self.home()
        return approval.approve(home.store, home.ledger, session_id)

    def hold(self, session_id: str) -> bool:
        home = self.home()
        return approval.hold(home.store, home.ledger, session_id)

    def delete(self, session_id: str) -> None:
        home = self.home()
        home.store.delete_session(
            session_id,
            lambda conn: home.ledger.append_in(conn, "session.deleted", session=session_id),
        )

    # -- history and settings --------------------------------------------------------------------

    def ledger(self) -> LedgerView:
        """The ledger and its verification, as an officer would run it on an export."""
        lines, records = self.home().ledger.export_view()  # what is shown is what is verified
        try:
            report: VerifyReport = verify_export(lines)
        except LedgerBroken as exc:
            return LedgerView(records, False, exc.seq, str(exc))
        return LedgerView(records, report.records == len(records), None, None)

    def hold_days(self) -> int:
        """Days a finished session waits for review (the person's choice within
        the policy's bounds, else the policy's)."""
        return preferences.hold_days(self.paths, self.policy)

    def set_hold_days(self, days: int) -> None:
        """Choose the hold period.

        Raises:
            UsageError: outside the policy's bounds.
        """
        preferences.save_hold_days(self.paths, days, self.policy)

    def exclusions(self) -> list[tuple[str, str]]:
        """(application class, "default" or "personal")."""
        return exclusions.list_exclusions(self._personal(), self.policy)

    def exclude(self, app: str) -> str:
        return exclusions.add_exclusion(self.home().ledger, self._personal(), app, self.policy)

    def include(self, app: str) -> str:
        return exclusions.remove_exclusion(self.home().ledger, self._personal(), app, self.policy)

    def _personal(self) -> PersonalExclusions:
        home = self.home()
        return PersonalExclusions.open(home.ledger, home.keys.master)

    def open_window_classes(self) -> list[str]:
        """The application classes of the windows open now (Settings offers them
        as exclusions); never their titles.

        Raises:
            DisplayUnavailable: no X display to ask (the message says why).
        """
        # Imported here so that the service's imports stay as they were; both are Qt-free.
        from cleartrace.capture.display import check_display
        from cleartrace.capture.windows import open_window_classes

        return open_window_classes(check_display(self._env))


def _today_counts(sessions: Iterable[SessionInfo]) -> dict[str, int]:
    """Events per category in the sessions that were recording at some time today."""
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    since = int(midnight.timestamp() * 1e9)
    out: dict[str, int] = {}
    for info in sessions:
        if (info.ended_ns or time.time_ns()) >= since:
            for name, n in info.counts.items():
                out[name] = out.get(name, 0) + n
    return out
