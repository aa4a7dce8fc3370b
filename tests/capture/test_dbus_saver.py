"""The screen saver's state as a desktop's locker says it on a real session bus."""

from __future__ import annotations

import logging
import threading

import pytest

from cleartrace.capture._dbus_saver import BusScreenSaver
from tests.support.session_bus import StandInScreenSaver
from tests.support.waiting import wait_for


def _listening() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cleartrace-bus-saver"]


def test_active_changed_is_seen_and_the_thread_ends_on_stop(
    screensaver: StandInScreenSaver,
) -> None:
    saver = BusScreenSaver()
    saver.start()
    try:
        assert saver.ready.wait(10)
        assert _listening()
        assert not saver.active
        screensaver.lock()
        wait_for(lambda: saver.active, what="the lock seen")
        screensaver.unlock()
        wait_for(lambda: not saver.active, what="the unlock seen")
    finally:
        saver.stop()
    assert not _listening()


def test_a_screen_already_locked_at_start_is_seen(screensaver: StandInScreenSaver) -> None:
    screensaver.lock()
    saver = BusScreenSaver()
    saver.start()
    try:
        assert saver.ready.wait(10)
        assert saver.active
    finally:
        saver.stop()


def test_a_bus_without_a_screen_saver_is_not_locked(session_bus: str) -> None:
    saver = BusScreenSaver()
    saver.start()
    try:
        assert saver.ready.wait(10)
        assert not saver.active
    finally:
        saver.stop()
    assert not _listening()


def test_no_session_bus_means_no_thread_and_not_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    saver = BusScreenSaver()
    saver.start()
    assert not _listening()
    assert not saver.active
    saver.stop()


def test_an_unreachable_bus_is_not_locked_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    saver = BusScreenSaver({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    with caplog.at_level(logging.INFO, logger="cleartrace.capture._dbus_saver"):
        saver.start()
        assert saver.ready.wait(10)
        saver.stop()
    assert not saver.active
    assert not _listening()
    assert len(caplog.records) == 1
