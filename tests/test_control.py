from __future__ import annotations

import stat
from typing import Any

import pytest

from cleartrace.control import ControlServer, request
from cleartrace.errors import RecorderError, RecorderNotRunning, UsageError
from cleartrace.paths import Paths, ensure_private_dirs


def _echo(req: dict[str, Any]) -> dict[str, Any]:
    if req["cmd"] == "fail":
        raise UsageError("no such thing")
    return {"echo": req}


def test_request_reaches_the_handler_through_a_0600_socket(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    server = ControlServer(private_home.socket, _echo)
    try:
        assert stat.S_IMODE(private_home.socket.stat().st_mode) == 0o600
        reply = request(private_home.socket, "pause", for_s=900)
        assert reply["echo"] == {"cmd": "pause", "for_s": 900}
        with pytest.raises(RecorderError, match="no such thing"):
            request(private_home.socket, "fail")
    finally:
        server.close()
    assert not private_home.socket.exists()


def test_no_recorder_is_a_clear_error(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    with pytest.raises(RecorderNotRunning, match="no recorder is running"):
        request(private_home.socket, "status")


def test_second_server_for_the_same_home_is_refused(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    server = ControlServer(private_home.socket, _echo)
    try:
        with pytest.raises(RecorderError, match="already running"):
            ControlServer(private_home.socket, _echo)
    finally:
        server.close()


def test_stale_socket_left_by_a_crash_is_replaced(private_home: Paths) -> None:
    import socket

    ensure_private_dirs(private_home)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(private_home.socket))
    stale.close()  # the file stays, nobody listens
    server = ControlServer(private_home.socket, _echo)
    try:
        assert request(private_home.socket, "ping")["ok"] is True
    finally:
        server.close()
