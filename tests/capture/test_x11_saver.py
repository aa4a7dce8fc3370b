"""The screen saver's state as lockers leave it, read from a real X server."""

from __future__ import annotations

import logging

import pytest
from Xlib import X
from Xlib.display import Display

from cleartrace.capture._x11_saver import ScreenSaver
from tests.support.xserver import XServer


def _force(mode: int) -> None:
    display = Display()
    try:
        display.force_screen_saver(mode)
        display.sync()
    finally:
        display.close()


@pytest.mark.xserver
def test_the_screen_saver_turned_on_and_off_is_seen(xserver: XServer) -> None:
    saver = ScreenSaver()
    try:
        assert not saver.on()
        _force(X.ScreenSaverActive)
        assert saver.on()
        _force(X.ScreenSaverReset)
        assert not saver.on()
    finally:
        saver.close()


@pytest.mark.xserver
def test_changes_between_two_questions_end_as_the_last_one_left_it(xserver: XServer) -> None:
    saver = ScreenSaver()
    try:
        assert not saver.on()  # the connection is open and told of changes from here
        _force(X.ScreenSaverActive)
        _force(X.ScreenSaverReset)
        assert not saver.on()
        _force(X.ScreenSaverActive)
        _force(X.ScreenSaverReset)
        _force(X.ScreenSaverActive)
        assert saver.on()
        assert saver.on()  # no new event: still on
    finally:
        saver.close()
        _force(X.ScreenSaverReset)


def test_no_display_is_not_locked_and_is_not_asked_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DISPLAY", ":4093")  # no server there
    saver = ScreenSaver()
    with caplog.at_level(logging.WARNING, logger="cleartrace.capture._x11_saver"):
        assert not saver.on()
        assert not saver.on()
    assert len(caplog.records) == 1
