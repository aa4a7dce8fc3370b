"""Listing the open windows' application classes on a real X server (for Settings)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from cleartrace.capture.windows import open_window_classes
from cleartrace.errors import DisplayUnavailable
from cleartrace.paths import Paths
from cleartrace.service import Service

pytestmark = pytest.mark.xserver


def test_lists_the_classes_of_open_windows_from_the_window_manager(
    xserver: Any, wm: None, app_window: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app_window("Alpha-Editor", "Secret plans - Alpha")
    app_window("BetaMail", "Inbox (3) - Beta", instance="beta")
    classes = open_window_classes(xserver.display)
    assert {"alpha-editor", "betamail"} <= set(classes)
    assert classes == sorted(set(classes))
    assert not any("secret" in c or "inbox" in c for c in classes)  # never a title
    assert "Secret" not in caplog.text


def test_lists_the_classes_without_a_window_manager(
    xserver: Any, app_window: Callable[..., str]
) -> None:
    app_window("Alpha-Editor", "First")
    app_window("Alpha-Editor", "Second")
    app_window("BetaMail", "Third")
    assert open_window_classes(xserver.display) == ["alpha-editor", "betamail"]


def test_the_service_lists_them_for_settings(
    private_home: Paths, xserver: Any, wm: None, app_window: Callable[..., str]
) -> None:
    app_window("GammaCalc", "Budget")
    service = Service(private_home)
    try:
        assert "gammacalc" in service.open_window_classes()
    finally:
        service.close()


def test_the_service_says_when_there_is_no_display(private_home: Paths) -> None:
    service = Service(private_home, env={})
    try:
        with pytest.raises(DisplayUnavailable, match="DISPLAY is not set"):
            service.open_window_classes()
    finally:
        service.close()
