"""The live "captured now" window: states and counts from the service, never content."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from cleartrace.categories import USUAL, Category
from cleartrace.service import Service
from cleartrace.status import RecorderState, RecorderStatus, Status
from cleartrace.ui.captured_now import CapturedNowWindow, category_state, state_line
from cleartrace.ui.runner import Runner


@pytest.fixture
def window(qtbot: QtBot, runner: Runner) -> Iterator[CapturedNowWindow]:
    w = CapturedNowWindow(runner, interval_ms=50)
    qtbot.addWidget(w)
    yield w
    w.close()


def text(window: CapturedNowWindow, name: str) -> str:
    label = window.findChild(QLabel, name)
    assert label is not None, name
    return label.text()


def test_without_consent_everything_is_off(
    qtbot: QtBot, window: CapturedNowWindow, settle: Callable[[], None]
) -> None:
    window.show()
    qtbot.waitUntil(lambda: text(window, "state").startswith("Off"), timeout=10_000)
    assert "not consented to anything" in text(window, "state")
    for category in USUAL:
        assert text(window, f"status_{category.value}") == "off (no consent)"
        assert text(window, f"count_{category.value}") == "0"
    assert window.findChild(QLabel, "status_typing_rhythm") is None  # nothing is captured for it
    assert text(window, "rhythm") == "Typing rhythm: your keys' timing is evened out before upload."
    assert "not recorded (no consent)" in text(window, "application")
    assert text(window, "titles") == "Window titles are not recorded."
    assert "key files readable only by you" in text(window, "key_storage")


def test_consent_without_a_display_says_it_cannot_record(
    qtbot: QtBot, window: CapturedNowWindow, service: Service
) -> None:
    service.give([Category.KEYS])
    window.show()
    qtbot.waitUntil(lambda: text(window, "state").startswith("Cannot record"), timeout=10_000)
    assert "DISPLAY is not set" in text(window, "state")
    assert text(window, "status_keys") == "off (not recording)"
    assert text(window, "status_clicks") == "off (no consent)"


def test_refreshes_with_one_call_in_flight_and_stops_when_hidden(
    qtbot: QtBot,
    window: CapturedNowWindow,
    service: Service,
    runner: Runner,
    settle: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = service.snapshot
    calls: list[float] = []

    def slow() -> Status:  # a busy disk: each answer takes longer than the interval
        calls.append(time.monotonic())
        time.sleep(0.15)
        return real()

    monkeypatch.setattr(service, "snapshot", slow)
    window.show()
    most = 0
    deadline = time.monotonic() + 15  # generous: a loaded machine only makes this slower
    while len(calls) < 4 and time.monotonic() < deadline:
        most = max(most, runner.pending)
        qtbot.wait(5)
    assert len(calls) >= 4  # it keeps refreshing, every 50 ms here ...
    assert most == 1  # ... yet never asks again before the answer came
    window.hide()
    settle()
    before = len(calls)
    qtbot.wait(300)
    assert len(calls) == before


def snapshot(
    *,
    state: str = "recording",
    hooks: tuple[str, ...] = ("keyboard", "focus"),
    granted: frozenset[Category] = frozenset({Category.KEYS, Category.APP_FOCUS}),
    application: str | None = "firefox",
    excluded_now: bool = False,
    paused_until: str | None = None,
) -> Status:
    """A tray status with a recorder running; the recorder's fields as it reports them."""
    recorder = RecorderStatus(
        pid=1,
        state=RecorderState(state),
        paused_until=paused_until,
        hooks=hooks,
        granted=tuple(sorted(c.value for c in granted)),
        session="s",
        excluded_now=excluded_now,
        application=application,
        counts={"keys": 42, "app_focus": 3},
    )
    return Status(
        state=RecorderState(state),
        home="/h",
        version="test",
        reason=None,
        can_record=True,
        display=":0",
        key_storage={"backend": "file", "location": "key files /h/keys/master and /h/keys/d"},
        consent={c.value: "given" if c in granted else "not asked" for c in Category},
        sessions=0,
        ledger_alarm=None,
        recorder=recorder,
        hold_days=3,
    )


def test_states_follow_the_installed_hooks() -> None:
    snap = snapshot()
    assert state_line(snap) == "Recording what you agreed to."
    assert category_state(snap, Category.KEYS) == "on"
    assert category_state(snap, Category.CLICKS) == "off (no consent)"
    excluded = snapshot(excluded_now=True, application=None)
    assert "excluded application" in state_line(excluded)
    assert category_state(excluded, Category.KEYS) == "on, nothing kept (excluded app)"
    paused = snapshot(state="paused", hooks=(), paused_until=None)
    assert state_line(paused) == "Paused until you resume: nothing is recorded."
    assert category_state(paused, Category.KEYS) == "paused"


def test_shows_the_application_class_and_whether_titles_are_recorded(
    qtbot: QtBot,
    window: CapturedNowWindow,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    granted = frozenset({Category.KEYS, Category.APP_FOCUS, Category.WINDOW_TITLES})
    live = snapshot(hooks=("keyboard", "focus", "focus.titles"), granted=granted)
    monkeypatch.setattr(service, "snapshot", lambda: live)
    window.show()
    qtbot.waitUntil(lambda: text(window, "count_keys") == "42", timeout=10_000)
    assert text(window, "application") == "Application in front: firefox"
    assert text(window, "titles") == "Window titles are recorded (they are not shown here)."
    assert text(window, "status_window_titles") == "on"
    assert text(window, "rhythm") == "Typing rhythm: your keys' timing is evened out before upload."
    rhythm = snapshot(
        hooks=("keyboard",), granted=frozenset({Category.KEYS, Category.TYPING_RHYTHM})
    )
    monkeypatch.setattr(service, "snapshot", lambda: rhythm)
    qtbot.waitUntil(lambda: "as typed" in text(window, "rhythm"), timeout=10_000)
    assert text(window, "rhythm") == "Typing rhythm: your keys' timing may leave as typed."
    assert text(window, "count_app_focus") == "3"
