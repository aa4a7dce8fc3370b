"""Recording acts: the hotkey's toggle, a pause ending by its timer, forgetting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cleartrace.actions import recording
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.redaction import Forgotten
from cleartrace.status import RecorderState, RecorderStatus, Status
from tests.support.sessions import closed_session

Serve = Callable[[Callable[[dict[str, Any]], dict[str, Any]]], list[dict[str, Any]]]


def recorder_status(state: RecorderState, paused_until: str | None = None) -> RecorderStatus:
    return RecorderStatus(
        pid=1,
        state=state,
        paused_until=paused_until,
        hooks=() if state is RecorderState.PAUSED else ("keyboard",),
        granted=("keys",),
        session="s",
        excluded_now=False,
        application=None,
        counts={},
    )


def status(state: RecorderState, paused_until: str | None = None) -> Status:
    return Status(
        state=state,
        home="/h",
        version="test",
        reason=None,
        can_record=True,
        display=":0",
        key_storage=None,
        consent={"keys": "given"},
        sessions=0,
        ledger_alarm=None,
        recorder=recorder_status(state, paused_until),
    )


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def test_toggle_pauses_a_recording_until_resumed_and_resumes_a_pause(
    private_home: Paths, recorder_socket: Serve
) -> None:
    seen = recorder_socket(
        lambda req: (
            {"status": recorder_status(RecorderState.PAUSED).to_json()}
            if req["cmd"] == "pause"
            else {}
        )
    )
    assert recording.toggle(RecorderState.RECORDING, private_home) is RecorderState.PAUSED
    assert recording.toggle(RecorderState.PAUSED, private_home) is RecorderState.RECORDING
    assert [(r["cmd"], r.get("for_s")) for r in seen] == [("pause", None), ("resume", None)]


def test_toggle_leaves_every_other_state_alone(private_home: Paths, recorder_socket: Serve) -> None:
    seen = recorder_socket(lambda req: {})
    for state in (RecorderState.OFF, RecorderState.CANNOT_RECORD, RecorderState.NOT_RUNNING):
        assert recording.toggle(state, private_home) is state
    assert seen == []


def test_a_timed_pause_that_reached_its_end_ended_by_its_timer() -> None:
    now = datetime.now(UTC)
    paused = status(RecorderState.PAUSED, _iso(now - timedelta(seconds=1)))
    assert recording.ended_by_timer(paused, status(RecorderState.RECORDING), now)
    # Within the slack of its end: still the timer (the tick is late, not the person).
    almost = status(RecorderState.PAUSED, _iso(now + timedelta(seconds=2)))
    assert recording.ended_by_timer(almost, status(RecorderState.RECORDING), now)


def test_a_pause_resumed_early_or_untimed_did_not_end_by_its_timer() -> None:
    now = datetime.now(UTC)
    early = status(RecorderState.PAUSED, _iso(now + timedelta(minutes=10)))
    assert not recording.ended_by_timer(early, status(RecorderState.RECORDING), now)
    untimed = status(RecorderState.PAUSED)
    assert not recording.ended_by_timer(untimed, status(RecorderState.RECORDING), now)
    garbled = status(RecorderState.PAUSED, "soon")
    assert not recording.ended_by_timer(garbled, status(RecorderState.RECORDING), now)
    ended = status(RecorderState.PAUSED, _iso(now - timedelta(seconds=1)))
    assert not recording.ended_by_timer(ended, status(RecorderState.OFF), now)


def test_forget_without_a_recorder_removes_the_events_from_the_store(
    private_home: Paths, home: Home
) -> None:
    session = closed_session(home, n_keys=20)
    assert recording.forget(private_home, 3600, home=home).events == 41  # 40 keys and the focus
    assert home.store.read_events(session) == []
    kinds = [r["kind"] for r in home.ledger.records()]
    assert kinds[-1] == "session.redacted"


def test_forget_without_a_recorder_opens_the_home_itself(private_home: Paths, home: Home) -> None:
    closed_session(home, n_keys=5)
    assert recording.forget(private_home, 3600).events == 11


def test_forget_asks_a_running_recorder_and_leaves_the_store_to_it(
    private_home: Paths, home: Home, recorder_socket: Serve
) -> None:
    session = closed_session(home, n_keys=5)
    seen = recorder_socket(lambda req: {"removed": 7})
    assert recording.forget(private_home, 900, home=home).events == 7
    assert [(r["cmd"], r["seconds"]) for r in seen] == [("forget", 900)]
    assert len(home.store.read_events(session)) == 11


def test_a_pause_answered_by_a_recorder_of_another_version_still_says_until_when(
    private_home: Paths, recorder_socket: Serve
) -> None:
    # After an upgrade the running recorder may be the old one: its status has
    # other fields, but the pause it confirms is all `cleartrace pause` needs.
    recorder_socket(lambda req: {"status": {"paused_until": "2026-12-05T10:15:00Z"}})
    assert recording.pause(private_home, 900.0) == "2026-12-05T10:15:00Z"


def test_what_forgetting_did_is_said_in_one_sentence_per_session_state() -> None:
    done = Forgotten(1234, {"uploaded": 1, "approved": 2, "pending": 1})
    said = recording.forgotten_text(done, "15m")
    assert said == (
        "forgot the last 15m: 1,234 events removed for good from sessions 2 approved, "
        "1 pending, 1 uploaded; approved sessions upload what remains of them; the "
        "organisation drops them from uploaded sessions when this removal's ledger record "
        "reaches it with the next upload"
    )
    assert recording.forgotten_text(Forgotten(0, {}), "15 minutes") == (
        "forgot the last 15 minutes: 0 events removed for good"
    )
