"""The tray started and quit with nothing typed, clicked or scrolled leaves no
session to review, and says so; one key typed keeps it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from cleartrace.categories import USUAL
from cleartrace.ui.runner import Runner
from cleartrace.ui.tray import Tray
from tests.support.cli import ct

pytestmark = pytest.mark.xserver


def _start(qtbot: QtBot, runner: Runner, call: Callable[..., Any]) -> tuple[Tray, list[str]]:
    tray = Tray(runner, use_tray=False, interval_ms=100)
    said: list[str] = []
    tray.notified.connect(lambda title, message: said.append(f"{title}: {message}"))
    tray.start()
    call(runner, lambda s: s.give(list(USUAL)))
    qtbot.waitUntil(lambda: tray.icon_state == "recording", timeout=15_000)
    return tray, said


def _quit(qtbot: QtBot, tray: Tray) -> None:
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.action("quit").trigger()


def test_quitting_after_only_moving_the_mouse_keeps_no_session_and_says_why(
    qtbot: QtBot,
    live_runner: Runner,
    call: Callable[..., Any],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    tray, said = _start(qtbot, live_runner, call)
    xdo("mousemove", "10", "10", "mousemove", "200", "120")
    qtbot.waitUntil(
        lambda: bool(tray.snapshot and tray.snapshot.session_counts.get("mouse_move")),
        timeout=10_000,
    )
    _quit(qtbot, tray)
    assert (
        "Session not kept: Nothing was typed, clicked or scrolled: the session was not kept."
        in said
    )
    assert json.loads(ct("sessions", "list", "--json").stdout) == []
    kinds = [r["kind"] for r in json.loads(ct("ledger", "show", "--json").stdout)]
    assert kinds[-2:] == ["session.ended", "session.deleted"]


def test_quitting_after_a_key_keeps_the_session_and_says_nothing_of_it(
    qtbot: QtBot,
    live_runner: Runner,
    call: Callable[..., Any],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    tray, said = _start(qtbot, live_runner, call)
    xdo("key", "a")
    qtbot.waitUntil(
        lambda: bool(tray.snapshot and tray.snapshot.session_counts.get("keys")),
        timeout=10_000,
    )
    _quit(qtbot, tray)
    assert not [line for line in said if "not kept" in line]
    assert len(json.loads(ct("sessions", "list", "--json").stdout)) == 1
