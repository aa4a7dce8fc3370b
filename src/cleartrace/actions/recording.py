"""Acts on the recording: start it, pause, resume, toggle, forget, end the
session being recorded.

A recorder runs either in this process (the tray's `Runtime`) or in another
one (`cleartrace record`, reached over the control socket); each act takes
the runtime when there is one and otherwise asks over the socket, so the CLI
and the tray share every decision made here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cleartrace.actions.consent import current
from cleartrace.actions.ledger import read_ledger
from cleartrace.capture.base import Backend
from cleartrace.capture.display import check_display
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import consent_from_records
from cleartrace.control import request
from cleartrace.errors import NoConsent, RecorderError, RecorderNotRunning
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.redaction import Forgotten, forget_since
from cleartrace.runtime import Runtime
from cleartrace.status import RecorderState, Status
from cleartrace.store.session_state import SessionState

__all__ = [
    "Ended",
    "check_can_record",
    "end_session",
    "ended_by_timer",
    "forget",
    "forgotten_text",
    "pause",
    "record",
    "resume",
    "start",
    "toggle",
]

# A pause that ends within this much of its announced end ended by its timer.
_TIMER_SLACK = timedelta(seconds=3)

#: What forgetting means for a session of each state that lost events.
_AFTER_FORGETTING = {
    SessionState.APPROVED: "approved sessions upload what remains of them",
    SessionState.UPLOADED: "the organisation drops them from uploaded sessions "
    "when this removal's ledger record reaches it with the next upload",
}


def check_can_record(paths: Paths, env: Mapping[str, str] | None = None) -> None:
    """What `cleartrace record` needs before it opens anything (and before it
    says it records): no other recorder, consent, a display.

    Raises:
        RecorderError: a recorder (the tray, another `record`) answers on this
            home's control socket.
        NoConsent: no category has consent under the policy in force.
        PolicyRefused: the installed policy does not verify.
        DisplayUnavailable: no X display to record from (the message says why).
    """
    try:
        reply = request(paths.socket, "status", timeout=2.0)
    except RecorderNotRunning:
        pass  # none, or a socket left by one that crashed: the runtime takes it over
    else:
        status = reply.get("status")
        pid = status.get("pid") if isinstance(status, dict) else None
        raise RecorderError(
            f"a recorder is already running for this home{f' (pid {pid})' if pid else ''}: "
            "the tray app or another 'cleartrace record'; quit it first, or use "
            "'cleartrace pause' and 'cleartrace status' with it"
        )
    policy = active_policy(paths)
    if not consent_from_records(read_ledger(paths), policy).granted():
        raise NoConsent(
            f"nothing to record: no category has consent under the policy in force "
            f"({policy.id} v{policy.version}); run 'cleartrace consent give --all' or "
            "'cleartrace consent give --category keys ...'"
        )
    check_display(os.environ if env is None else env)


def record(runtime: Runtime, home: Home, backend: Backend, duration: float | None) -> bool:
    """Record in this thread until `runtime.stop()` or `duration` seconds, with
    approved sessions uploading in the background while enrolled. Returns
    False when the session closed at the end was not kept (it had no input).

    Raises:
        NoConsent, RecorderError, StoreError: see `Runtime.record`.
    """
    runtime.start_uploads(home.keys)
    try:
        runtime.record(home, backend, duration)
    finally:
        runtime.close()
    return runtime.last_kept is not False


def start(
    home: Home, runtime: Runtime, backend_factory: Callable[[], Backend], env: Mapping[str, str]
) -> None:
    """Start recording on the runtime's thread if there is consent; no hook is
    installed without it. "Cannot record" is the runtime's `failure`, not raised.

    Raises:
        PolicyRefused: the installed policy does not verify.
    """
    if runtime.alive:
        return
    if current(home.ledger, active_policy(home.paths)).granted():
        runtime.start(backend_factory, env)


def pause(paths: Paths, seconds: float | None, runtime: Runtime | None = None) -> str | None:
    """Remove every hook for `seconds`, or until resumed (None); returns when the
    pause ends (ISO 8601), None until resumed.

    Raises:
        UsageError: the runtime records nothing.
        RecorderNotRunning, RecorderError: no recorder answered on the socket.
    """
    if runtime is not None:
        recorder = runtime.running()
        recorder.pause(seconds)
        return recorder.status().paused_until
    reply = request(paths.socket, "pause", for_s=seconds)
    # Only the end is read: a recorder of another version (running across an
    # upgrade) reports other fields, and the pause it confirmed is all we need.
    status = reply.get("status")
    until = status.get("paused_until") if isinstance(status, dict) else None
    return until if isinstance(until, str) else None


def resume(paths: Paths, runtime: Runtime | None = None) -> None:
    """End a pause.

    Raises:
        UsageError: nothing is recorded, or it is not paused.
        RecorderNotRunning, RecorderError: no recorder answered on the socket.
    """
    if runtime is not None:
        runtime.running().resume()
        return
    request(paths.socket, "resume")


def toggle(state: RecorderState, paths: Paths, runtime: Runtime | None = None) -> RecorderState:
    """Pause a recording until resumed, or resume a pause; anything else stays.
    Returns the new state. The tray decides on its worker thread, with `state`
    read there, so that two quick presses of the hotkey cannot both pause."""
    if state is RecorderState.RECORDING:
        pause(paths, None, runtime)
        return RecorderState.PAUSED
    if state is RecorderState.PAUSED:
        resume(paths, runtime)
        return RecorderState.RECORDING
    return state


@dataclass(frozen=True, slots=True)
class Ended:
    """The session `end_session` ended."""

    id: str
    #: False: nothing was typed, clicked or scrolled in it, and it was removed.
    kept: bool


#: How long a client waits for the recorder to end (and compact) a session.
END_TIMEOUT = 120.0


def end_session(paths: Paths, runtime: Runtime | None = None) -> Ended | None:
    """End the session being recorded now, so that it can be reviewed; recording
    goes on, and the next input begins a new session. Returns the ended
    session, None when none was open (nothing came since the last ended).

    Raises:
        RecorderNotRunning: nothing records (this runtime, or on the socket).
        RecorderError: a recorder holds the socket but did not answer.
    """
    if runtime is not None and runtime.alive:
        done = runtime.running().end_session()
        return None if done is None else Ended(*done)
    # Ending a long session compacts it: seconds, not the usual moment.
    reply = request(paths.socket, "end", timeout=END_TIMEOUT)
    ended = reply.get("ended")
    # A recorder of an older version says nothing of keeping: it kept it.
    return Ended(ended, reply.get("kept") is not False) if isinstance(ended, str) else None


def ended_by_timer(previous: Status, now: Status, clock: datetime | None = None) -> bool:
    """Whether a timed pause in `previous` ended by its timer by `now` (rather
    than the person resuming early)."""
    until_text = previous.paused_until
    if previous.state != RecorderState.PAUSED or until_text is None:
        return False
    if now.state != RecorderState.RECORDING:
        return False
    try:
        until = datetime.fromisoformat(until_text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (clock or datetime.now(UTC)) >= until - _TIMER_SLACK


def forget(
    paths: Paths, seconds: float, runtime: Runtime | None = None, home: Home | None = None
) -> Forgotten:
    """Remove the last `seconds` from every session, the running one included;
    returns how many events went, and from how many sessions of each state.

    A running recorder does it (it closes its session first, forgets, and goes
    on in a new one): this runtime's, else one answering on the socket. With
    none, the store is changed directly (in `home`, or one opened for it).

    Raises:
        RecorderError: a recorder holds the socket but did not answer.
    """
    if runtime is not None and runtime.alive:
        return runtime.running().forget(seconds)
    try:
        reply = request(paths.socket, "forget", timeout=120.0, seconds=seconds)
    except RecorderNotRunning:
        pass
    else:
        try:
            return Forgotten.from_json(reply)
        except (KeyError, TypeError, ValueError):
            raise RecorderError(
                f"the recorder sent an unreadable reply on {paths.socket}"
            ) from None
    since = datetime.now(UTC) - timedelta(seconds=seconds)
    if home is not None:
        return forget_since(home.store, home.ledger, since)
    opened = Home.open(paths, create=False)
    try:
        return forget_since(opened.store, opened.ledger, since)
    finally:
        opened.close()


def forgotten_text(done: Forgotten, span: str) -> str:
    """What `forget` did, in the words both the CLI and the tray say it: how many
    events went, from how many sessions of each state, and what that means for
    approved and uploaded ones (`span`: how the person named the time, "15m")."""
    touched = ", ".join(f"{n} {state}" for state, n in sorted(done.sessions.items()))
    notes = "; ".join(text for state, text in _AFTER_FORGETTING.items() if done.sessions.get(state))
    return (
        f"forgot the last {span}: {done.events:,} events removed for good"
        + (f" from sessions {touched}" if touched else "")
        + (f"; {notes}" if notes else "")
    )
