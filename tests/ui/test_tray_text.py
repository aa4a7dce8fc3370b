"""What the tooltip and the status window say for a status: plain text, no widgets."""

from __future__ import annotations

from cleartrace.categories import Category
from cleartrace.status import RecorderState, RecorderStatus, Status, UploadStatus
from cleartrace.ui.tray_text import describe


def status(*, today: dict[str, int] | None = None, uploads: UploadStatus | None = None) -> Status:
    recorder = RecorderStatus(
        pid=1,
        state=RecorderState.RECORDING,
        paused_until=None,
        hooks=("keyboard", "focus"),
        granted=("app_focus", "keys"),
        session="s",
        excluded_now=False,
        application=None,
        counts={},
    )
    return Status(
        state=RecorderState.RECORDING,
        home="/h",
        version="test",
        reason=None,
        can_record=True,
        display=":0",
        key_storage=None,
        consent={c.value: "given" for c in Category},
        sessions=1,
        ledger_alarm=None,
        recorder=recorder,
        collector="https://collector.example",
        today_counts=today or {},
        uploads=uploads or UploadStatus(),
    )


def test_one_of_a_kind_is_said_in_the_singular() -> None:
    _, lines = describe(status(today={"keys": 1, "app_focus": 1, "clicks": 2}))
    assert lines[0] == "Today: 1 focus change, 2 click events, 1 key event"


def test_a_failed_upload_is_not_called_nothing_waiting() -> None:
    problem = "the collector's certificate is not trusted; set REQUESTS_CA_BUNDLE"
    _, lines = describe(status(uploads=UploadStatus(queue=0, problem=problem, passes=1)))
    assert "Uploads: nothing waiting" not in lines
    assert "Uploads: the last attempt failed" in lines
    assert f"Upload problem: {problem}" in lines


def test_approved_sessions_wait_while_the_last_attempt_failed() -> None:
    _, lines = describe(status(uploads=UploadStatus(queue=2, problem="refused", passes=1)))
    assert "Uploads: 2 sessions approved, waiting to upload; the last attempt failed" in lines


def test_a_healthy_idle_upload_queue_is_nothing_waiting() -> None:
    _, lines = describe(status(uploads=UploadStatus(queue=0, passes=3)))
    assert "Uploads: nothing waiting" in lines


def test_excluded_intervals_are_not_counted_as_recorded_events() -> None:
    _, lines = describe(status(today={"excluded_intervals": 1, "excluded_markers": 2}))
    assert lines[0] == "Today: nothing recorded"
