"""A headless recorder's log says why an upload failed, as the tray's tooltip does."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cleartrace.home import Home
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import init_policy
from cleartrace.upload.background import BackgroundUploader
from tests.support.notice import EXAMPLE_NOTICE
from tests.support.orgkit import Org, approve, record_session
from tests.support.waiting import wait_for


def test_a_failed_background_upload_logs_the_message_the_tray_shows(
    org: Org, device: Home, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    approve(device, record_session(device))
    generate(tmp_path / "other")
    foreign = init_policy(
        tmp_path / "other", org.collector.url, tmp_path / "foreign.json", notice=EXAMPLE_NOTICE
    )
    (device.paths.home / "policy.json").write_bytes(foreign.raw)  # behind the device's back
    caplog.set_level(logging.WARNING, logger="cleartrace.upload.background")
    background = BackgroundUploader(device.paths, device.keys, interval=60)
    background.start()
    try:
        wait_for(lambda: background.last_error is not None, 15, "a failed upload pass")
    finally:
        background.stop()
    assert background.last_error is not None
    assert "not the one this device enrolled with" in background.last_error
    (logged,) = [r.getMessage() for r in caplog.records]
    assert background.last_error in logged
