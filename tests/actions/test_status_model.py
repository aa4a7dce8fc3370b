"""One `Status`: `cleartrace status --json` prints its JSON form, the control
socket sends the recorder's part of it, and the tray's service renders it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from cleartrace.actions.status import collect
from cleartrace.cli import main
from cleartrace.control import request
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.recorder import Recorder
from cleartrace.service import Service
from cleartrace.status import RecorderState, RecorderStatus, Status

Serve = Callable[[Callable[[dict[str, Any]], dict[str, Any]]], list[dict[str, Any]]]

RUNNING = RecorderStatus(
    pid=4242,
    state=RecorderState.PAUSED,
    paused_until="2026-12-05T10:00:00Z",
    hooks=(),
    granted=("app_focus", "keys"),
    session="ab" * 16,
    excluded_now=False,
    application=None,
    counts={"keys": 12},
)


def test_the_recorder_reports_its_part_of_the_status_as_a_typed_value() -> None:
    assert Recorder.status.__annotations__["return"] == "RecorderStatus"
    assert RecorderStatus.from_json(json.loads(json.dumps(RUNNING.to_json()))) == RUNNING


def test_status_json_is_the_status_with_the_recorder_the_socket_sent(
    private_home: Paths,
    home: Home,
    recorder_socket: Serve,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder_socket(lambda req: {"status": RUNNING.to_json()})
    snap = collect(private_home, os.environ)
    assert isinstance(snap, Status)
    assert snap.recorder == RUNNING
    assert snap.state is RecorderState.PAUSED
    assert main(["status", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(snap.to_json()))
    assert printed["recorder"] == RUNNING.to_json()
    assert (printed["state"], printed["hooks"]) == ("paused", [])
    assert request(private_home.socket, "status")["status"] == printed["recorder"]


def test_an_unreachable_recorder_keeps_its_json_form(
    private_home: Paths, home: Home, recorder_socket: Serve
) -> None:
    def broken(req: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("garbled")

    recorder_socket(broken)
    out = collect(private_home, os.environ).to_json()
    assert out["state"] == "unreachable"
    assert out["recorder"]["state"] == "unreachable"
    assert out["hooks"] == []


def test_the_tray_renders_the_same_status_type(private_home: Paths, home: Home) -> None:
    service = Service(private_home, env={})
    try:
        snap = service.snapshot()
    finally:
        service.close()
    assert isinstance(snap, Status)
    # Consent is given but there is no display: the tray's own recorder cannot run.
    assert snap.state is RecorderState.CANNOT_RECORD
    assert snap.reason
    cli = collect(private_home, {})
    assert set(snap.to_json()) == set(cli.to_json())
    assert (snap.consent, snap.sessions, snap.home) == (cli.consent, cli.sessions, cli.home)


def test_a_damaged_enrolment_file_does_not_take_the_status_down(
    private_home: Paths, home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    # The uploader says it cannot upload; `status` (and the tray's refresh)
    # must still say what is recorded.
    (private_home.home / "enrolment.json").write_text("{bad")
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["collector"] is None
    assert out["consent"]["keys"] == "given"
    service = Service(private_home)
    try:
        assert service.snapshot().collector is None
    finally:
        service.close()
