"""The review window over a tray that records: the session being recorded says
why it cannot be reviewed yet, and "End this session now" makes it reviewable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from cleartrace.categories import Category
from cleartrace.store.session_state import SessionState
from cleartrace.ui.review import ReviewWindow
from cleartrace.ui.runner import Runner

pytestmark = pytest.mark.xserver


def _button(window: ReviewWindow, name: str) -> QPushButton:
    found = window.findChild(QPushButton, name)
    assert found is not None, name
    return found


def _settle(qtbot: QtBot, runner: Runner) -> None:
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=15_000)


def test_the_session_being_recorded_says_why_and_can_be_ended_now(
    qtbot: QtBot,
    live_runner: Runner,
    call: Callable[..., Any],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    call(live_runner, lambda s: s.give([Category.KEYS]))
    call(live_runner, lambda s: s.start())
    running = call(live_runner, lambda s: s.snapshot().recorder.session)
    assert running is not None
    xdo("key", "a")  # a session in which nothing was typed would not be kept
    qtbot.waitUntil(
        lambda: bool(call(live_runner, lambda s: s.snapshot().session_counts.get("keys"))),
        timeout=10_000,
    )
    window = ReviewWindow(live_runner)
    qtbot.addWidget(window)
    window.show()
    _settle(qtbot, live_runner)
    window.table.select_id(running)
    _settle(qtbot, live_runner)

    note = window.findChild(QLabel, "live_note")
    assert note is not None
    assert note.isVisible()
    assert "still being recorded" in note.text()
    end = _button(window, "end_session")
    assert end.isVisible()
    assert end.isEnabled()
    assert end.text() == "End this session now"
    assert not _button(window, "approve").isEnabled()

    qtbot.mouseClick(end, Qt.MouseButton.LeftButton)
    _settle(qtbot, live_runner)
    (info,) = [i for i, _ in call(live_runner, lambda s: s.sessions()) if i.id == running]
    assert info.state == SessionState.PENDING
    assert window.table.selected_id() == running
    assert _button(window, "approve").isEnabled()
    assert not note.isVisible()
    assert not end.isVisible()
    assert call(live_runner, lambda s: s.snapshot().recorder.session) is None  # until input


def test_ending_a_session_in_which_nothing_was_typed_says_it_was_not_kept(
    qtbot: QtBot, live_runner: Runner, call: Callable[..., Any]
) -> None:
    call(live_runner, lambda s: s.give([Category.KEYS]))
    call(live_runner, lambda s: s.start())
    running = call(live_runner, lambda s: s.snapshot().recorder.session)
    window = ReviewWindow(live_runner)
    qtbot.addWidget(window)
    window.show()
    _settle(qtbot, live_runner)
    window.table.select_id(running)
    _settle(qtbot, live_runner)
    qtbot.mouseClick(_button(window, "end_session"), Qt.MouseButton.LeftButton)
    _settle(qtbot, live_runner)
    assert running not in [i.id for i, _ in call(live_runner, lambda s: s.sessions())]
    said = window.findChild(QLabel, "status")
    assert said is not None
    assert "nothing was typed, clicked or scrolled: the session was not kept" in said.text()
