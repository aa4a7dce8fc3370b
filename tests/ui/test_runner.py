"""The runner: service calls on its worker, answers on the GUI thread, in order."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot
from shiboken6 import delete

from cleartrace.errors import UsageError
from cleartrace.service import Service
from cleartrace.ui.runner import Runner


def test_results_and_errors_come_back_on_the_gui_thread_in_order(
    qtbot: QtBot, runner: Runner
) -> None:
    gui = threading.get_ident()
    seen: list[tuple[str, object, int]] = []

    def fail(_: Service) -> None:
        raise UsageError("recording is not paused")

    runner.call(lambda s: threading.get_ident(), lambda r: seen.append(("done", r, _me())))
    runner.call(fail, None, lambda e: seen.append(("error", e, _me())))
    runner.call(lambda s: "third", lambda r: seen.append(("done", r, _me())))
    assert runner.pending == 3
    qtbot.waitUntil(lambda: runner.pending == 0)
    (kind1, worker, t1), (kind2, message, t2), (kind3, third, t3) = seen
    assert (kind1, kind2, kind3) == ("done", "error", "done")
    assert worker != gui
    assert message == "recording is not paused"
    assert third == "third"
    assert t1 == t2 == t3 == gui


def test_an_unexpected_error_reaches_the_person_as_its_type_only(
    qtbot: QtBot, runner: Runner
) -> None:
    errors: list[str] = []

    def bug(_: Service) -> None:
        raise ValueError("typed text pwcanary77")

    runner.call(bug, None, errors.append)
    qtbot.waitUntil(lambda: bool(errors))
    assert errors == ["unexpected error (ValueError)"]


def test_an_owner_deleted_before_the_answer_gets_no_callback(qtbot: QtBot, runner: Runner) -> None:
    gate = threading.Event()
    called: list[object] = []
    owner = QObject()
    runner.call(lambda s: gate.wait(10), called.append, called.append, owner=owner)
    delete(owner)  # the window closed while its call was on its way
    gate.set()
    qtbot.waitUntil(lambda: runner.pending == 0)
    assert called == []


def _me() -> int:
    return threading.get_ident()
