"""Qt's binding keeps the reference counts of what it passes through signals.

The tray emits a signal from Python (the runner's answer) and gets a slot
called from Qt (the refresh timer, a menu action) every second. A binding
that drops one reference to `True` or `None` each time (PySide6 6.12.0 does
both) brings them to zero after an hour or so, or during the interpreter's
finalisation at quit: `Fatal Python error: bool_dealloc`, exit status 134.
This pins the binding to a release that does not.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from cleartrace.ui.runner import Runner

TIMES = 300
# The counts of these shared objects move a little with whatever else runs;
# a binding that drops a reference per emission moves them by TIMES.
SLACK = TIMES // 3


def _counts() -> tuple[int, int]:
    # Garbage left by earlier tests, freed by a collection during the
    # measurement, would drop references the binding never took: collect first.
    gc.collect()
    return sys.getrefcount(True), sys.getrefcount(None)


def _assert_kept(before: tuple[int, int], what: str) -> None:
    after = _counts()
    assert after[0] - before[0] > -SLACK, f"{what} dropped references to True: {before} -> {after}"
    assert after[1] - before[1] > -SLACK, f"{what} dropped references to None: {before} -> {after}"


def test_a_signal_emitted_from_python_takes_no_reference_it_does_not_own(qtbot: QtBot) -> None:
    class Emitter(QObject):
        answered = Signal(int, object, object)

    calls = [0]

    def slot(_token: int, _result: object, _error: object) -> None:
        calls[0] += 1

    emitter = Emitter()
    emitter.answered.connect(slot)
    before = _counts()
    for token in range(TIMES):
        emitter.answered.emit(token, "done", None)
    assert calls[0] == TIMES
    _assert_kept(before, "Signal.emit")


def test_a_slot_called_from_qt_takes_no_reference_it_does_not_own(qtbot: QtBot) -> None:
    menu = QMenu()
    action = QAction("Quit", menu)
    calls = [0]

    def slot() -> None:
        calls[0] += 1

    action.triggered.connect(slot)
    before = _counts()
    for _ in range(TIMES):
        action.trigger()
    assert calls[0] == TIMES
    _assert_kept(before, "QAction.triggered")


def test_the_runners_answers_take_no_reference_they_do_not_own(
    qtbot: QtBot, runner: Runner, settle: Callable[[], None]
) -> None:
    answers = [0]

    def done(_result: object) -> None:
        answers[0] += 1

    settle()
    before = _counts()
    for _ in range(TIMES):
        runner.call(lambda _s: "ok", done)
    settle()
    assert answers[0] == TIMES
    _assert_kept(before, "the runner")
