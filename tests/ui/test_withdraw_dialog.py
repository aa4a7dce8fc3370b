"""Withdrawing consent from the tray: one confirmation, sessions kept or deleted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QLabel, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from cleartrace.categories import Category
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.withdraw_dialog import WithdrawDialog

MS = 1_000_000
W = TypeVar("W", bound=QWidget)


def a_session(paths: Paths) -> str:
    """One closed session with a few typed keys, stored the way the recorder does."""
    home = Home.open(paths, create=True)
    try:
        handle = home.store.begin_session(time.time_ns() - 60 * 10**9, 0)
        code = keysym_of_char("a")
        batch: list[RawEvent] = [
            (MS, int(Kind.KEY_DOWN), code, 0, 0, 0, None),
            (2 * MS, int(Kind.KEY_UP), code, 0, 0, 0, None),
        ]
        home.store.append_chunk(handle, batch)
        home.store.end_session(handle, time.time_ns())
        return handle.id
    finally:
        home.close()


@pytest.fixture
def consented(private_home: Paths, service: Service) -> str:
    """Keys and clicks given, and one stored session; returns its id."""
    session = a_session(private_home)
    service.give([Category.KEYS, Category.CLICKS])
    return session


def open_dialog(qtbot: QtBot, runner: Runner, settle: Callable[[], None]) -> WithdrawDialog:
    dialog = WithdrawDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()
    settle()
    return dialog


def child(dialog: WithdrawDialog, cls: type[W], name: str) -> W:
    found = dialog.findChild(cls, name)
    assert found is not None, name
    return found


def click(qtbot: QtBot, widget: QCheckBox | QPushButton) -> None:
    at = QPoint(8, widget.height() // 2) if isinstance(widget, QCheckBox) else QPoint()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=at)


def withdrawals(service: Service) -> list[list[str]]:
    return [r["categories"] for r in service.ledger().records if r["kind"] == "consent.withdrawn"]


def test_withdraw_keeps_the_sessions_unless_asked(
    qtbot: QtBot, runner: Runner, service: Service, settle: Callable[[], None], consented: str
) -> None:
    dialog = open_dialog(qtbot, runner, settle)
    assert "keys you press, mouse clicks" in child(dialog, QLabel, "given").text().lower()
    assert not child(dialog, QCheckBox, "delete_sessions").isChecked()
    with qtbot.waitSignal(dialog.finished, timeout=10_000) as finished:
        click(qtbot, child(dialog, QPushButton, "withdraw"))
    assert finished.args == [QDialog.DialogCode.Accepted.value]
    settle()
    assert withdrawals(service) == [["clicks", "keys"]]
    assert service.snapshot().granted == frozenset()
    assert [info.id for info, _ in service.sessions()] == [consented]
    assert "session.deleted" not in {r["kind"] for r in service.ledger().records}


def test_withdraw_and_delete_all_my_sessions(
    qtbot: QtBot, runner: Runner, service: Service, settle: Callable[[], None], consented: str
) -> None:
    dialog = open_dialog(qtbot, runner, settle)
    click(qtbot, child(dialog, QCheckBox, "delete_sessions"))
    with qtbot.waitSignal(dialog.finished, timeout=10_000):
        click(qtbot, child(dialog, QPushButton, "withdraw"))
    settle()
    assert withdrawals(service) == [["clicks", "keys"]]
    assert service.sessions() == []
    deleted = [r["session"] for r in service.ledger().records if r["kind"] == "session.deleted"]
    assert deleted == [consented]


def test_cancel_changes_nothing(
    qtbot: QtBot, runner: Runner, service: Service, settle: Callable[[], None], consented: str
) -> None:
    dialog = open_dialog(qtbot, runner, settle)
    click(qtbot, child(dialog, QCheckBox, "delete_sessions"))
    with qtbot.waitSignal(dialog.finished, timeout=10_000) as finished:
        click(qtbot, child(dialog, QPushButton, "cancel"))
    assert finished.args == [QDialog.DialogCode.Rejected.value]
    settle()
    assert withdrawals(service) == []
    assert len(service.sessions()) == 1


def test_nothing_to_withdraw_without_consent(
    qtbot: QtBot, runner: Runner, settle: Callable[[], None]
) -> None:
    dialog = open_dialog(qtbot, runner, settle)
    assert "not consented to anything" in child(dialog, QLabel, "given").text()
    assert not child(dialog, QPushButton, "withdraw").isEnabled()
