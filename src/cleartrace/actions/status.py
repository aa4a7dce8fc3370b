"""Collecting the `Status`: for `cleartrace status` (read-only, asking a
recorder over the control socket) and for the tray (its own runtime, and the
review queue and uploads of its open home) alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from cleartrace import __version__
from cleartrace.capture.display import display_support
from cleartrace.consent.policy import Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import consent_from_records
from cleartrace.control import request
from cleartrace.errors import ClearTraceError, HomeError, RecorderNotRunning
from cleartrace.home import Home
from cleartrace.paths import Paths, check_home
from cleartrace.preferences import hold_days
from cleartrace.runtime import Runtime
from cleartrace.status import RecorderState, RecorderStatus, Status, UploadStatus
from cleartrace.store import ledger_rows
from cleartrace.store.db import connect
from cleartrace.store.key_files import read_device_public
from cleartrace.store.keys import describe_keystore
from cleartrace.store.reading import SessionInfo, count_sessions
from cleartrace.store.session_state import SessionState
from cleartrace.store.tally import EXCLUDED
from cleartrace.upload.alarm import ledger_alarm
from cleartrace.upload.enrolment import Enrolment, load_enrolment

__all__ = ["collect"]


def collect(
    paths: Paths,
    env: Mapping[str, str],
    *,
    runtime: Runtime | None = None,
    home: Home | None = None,
) -> Status:
    """Consent, recorder state, store, key storage, display support, the latest
    ledger alarm (`ledger_alarm`: a restored old store, upload/alarm.py).

    Without `runtime` the recorder is asked over the control socket and the
    state is "not running" when none answers; with it (the tray) the runtime's
    own recorder is asked, and the state is "off" when it records nothing.
    With `home` the review queue, today's counts and the uploads are filled in.
    Without it, it reads only: it never creates a home, a key or a store.

    Raises:
        HomeError: the home lies in another user's directory (see `check_home`).
        PolicyRefused: with `home`, the installed policy does not verify.
    """
    check_home(paths.home)
    # With a home open the policy must verify (the hold period depends on it):
    # asked first, so that a broken one is reported before anything is read.
    policy = None if home is None else active_policy(paths)
    listed: list[SessionInfo] | None = None
    if home is None or policy is None:
        consent, sessions, alarm = _read_store(paths)
    else:  # the tray, once a second: its open home, not a connection of its own
        listed = home.store.list_sessions()
        records = home.ledger.records()
        consent = consent_from_records(records, policy).as_dict()
        sessions, alarm = len(listed), ledger_alarm(records)
    error: str | None = None
    if runtime is not None:
        recorder = runtime.recorder_status()
        reason = runtime.failure
        # The tray refreshes every second: the display is asked only when it
        # would record and does not (a probe may wait seconds on a busy X server).
        asks = reason is None and not runtime.alive and "given" in consent.values()
    else:
        recorder, error = _ask_recorder(paths)
        reason, asks = None, True  # `cleartrace status` prints what the display says
    can_record, display = display_support(env) if asks else (None, None)
    if reason is None and recorder is None and error is None and can_record is False:
        reason = display
    if reason is not None:
        state = RecorderState.CANNOT_RECORD
    elif recorder is not None:
        state = recorder.state
    elif error is not None:
        state = RecorderState.UNREACHABLE
    else:
        state = RecorderState.OFF if runtime is not None else RecorderState.NOT_RUNNING
    enrolment = _enrolment(paths)
    status = Status(
        state=state,
        home=str(paths.home),
        version=__version__,
        reason=reason,
        can_record=can_record,
        display=display,
        key_storage=describe_keystore(paths),
        consent=consent,
        sessions=sessions,
        ledger_alarm=alarm,
        recorder=recorder,
        recorder_error=error,
        collector=None if enrolment is None else enrolment.collector,
        device=read_device_public(paths) or (None if enrolment is None else enrolment.device),
    )
    if listed is None or policy is None:
        return status
    queue = 0
    if enrolment is not None:
        queue = sum(
            1
            for s in listed
            if s.state == SessionState.APPROVED and enrolment.may_upload(s.started_ns)
        )
    return replace(
        status,
        pending_review=sum(1 for s in listed if s.state == SessionState.PENDING),
        today_counts=_today_counts(listed, recorder),
        hold_days=hold_days(paths, policy),
        uploads=UploadStatus(queue=queue) if runtime is None else runtime.upload_status(queue),
    )


def _ask_recorder(paths: Paths) -> tuple[RecorderStatus | None, str | None]:
    """The status of a recorder answering on the socket, or why it did not."""
    try:
        reply = request(paths.socket, "status", timeout=2.0)["status"]
        return RecorderStatus.from_json(reply), None
    except RecorderNotRunning:
        return None, None
    except ClearTraceError as exc:
        return None, str(exc)
    except (KeyError, TypeError, ValueError):
        return None, f"the recorder sent an unreadable status on {paths.socket}"


def _enrolment(paths: Paths) -> Enrolment | None:
    """The enrolment, or None; a damaged one is reported by the uploader, which
    cannot upload then, not by a status that would otherwise fail as a whole."""
    try:
        return load_enrolment(paths)
    except HomeError:
        return None


def _read_store(paths: Paths) -> tuple[dict[str, str], int | None, dict[str, Any] | None]:
    """Consent (under the installed policy if it verifies), the number of
    sessions and the latest ledger alarm, read without any key."""
    db = paths.db
    if not db.exists():
        return {}, None, None
    try:
        policy: Policy | None = active_policy(paths)
    except ClearTraceError:  # an installed policy that does not verify records nothing
        policy = None
    conn = connect(db)
    try:
        records = ledger_rows.records(conn, db)
        n = count_sessions(conn, db)
    finally:
        conn.close()
    return consent_from_records(records, policy).as_dict(), n, ledger_alarm(records)


def _as_stored(live: Mapping[str, int]) -> dict[str, int]:
    """A recorder's counts named and counted as the store counts the same
    events: no context, exclusions as intervals (the markers that start them)."""
    counts = {k: n for k, n in live.items() if k not in ("context", "excluded_markers")}
    if markers := live.get("excluded_markers", 0):
        counts[EXCLUDED] = (markers + 1) // 2  # an interval still open has no end yet
    return counts


def _today_counts(
    sessions: Iterable[SessionInfo], recorder: RecorderStatus | None
) -> dict[str, int]:
    """Events per category in the sessions that were recording at some time
    today; the one being recorded as its recorder counts it now (the store
    has its counts only every few chunks: store/sessions.py, COUNTS_EVERY)."""
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    since = int(midnight.timestamp() * 1e9)
    live = None if recorder is None else recorder.session
    out: dict[str, int] = {}
    for info in sessions:
        if (info.ended_ns or time.time_ns()) >= since:
            counts = info.counts
            if recorder is not None and info.id == live:
                counts = _as_stored(recorder.counts)
            for name, n in counts.items():
                out[name] = out.get(name, 0) + n
    return out
