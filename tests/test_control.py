from __future__ import annotations

import contextlib
import stat
import threading
from pathlib import Path
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


def test_a_request_being_answered_is_answered_before_close_returns(private_home: Paths) -> None:
    """What a request does (a pause, a withdrawal) is not done after the
    recorder it was asked of has shut down."""
    ensure_private_dirs(private_home)
    entered, release, order = threading.Event(), threading.Event(), []

    def slow(req: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        order.append("answered")
        return {}

    server = ControlServer(private_home.socket, slow)
    client = threading.Thread(target=request, args=(private_home.socket, "pause"))
    client.start()
    assert entered.wait(10)
    closing = threading.Thread(target=lambda: (server.close(), order.append("closed")))
    closing.start()
    closing.join(0.3)
    release.set()
    closing.join(10)
    client.join(10)
    assert order == ["answered", "closed"]


def test_close_ends_every_thread_even_with_every_answerer_busy(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    release = threading.Event()
    busy = threading.Semaphore(0)

    def blocked(req: dict[str, Any]) -> dict[str, Any]:
        busy.release()
        release.wait(10)
        return {}

    server = ControlServer(private_home.socket, blocked)
    clients = [threading.Thread(target=_quietly, args=(private_home.socket,)) for _ in range(10)]
    for c in clients:
        c.start()
    for _ in range(8):  # every answerer busy; the others wait to be accepted
        assert busy.acquire(timeout=10)
    threading.Timer(0.3, release.set).start()
    server.close()
    for c in clients:
        c.join(10)
    names = {t.name for t in threading.enumerate()}
    assert not {"cleartrace-control", "cleartrace-control-answer"} & names


def _quietly(path: Path) -> None:
    with contextlib.suppress(RecorderError):
        request(path, "status", timeout=10)


@pytest.mark.xserver
def test_a_resume_answered_as_the_recorder_stops_installs_no_hook(
    private_home: Paths, xserver: Any
) -> None:
    """The control server's close waits for the requests being answered so
    that they are done before the recorder goes on (`Runtime.record` closes
    it after `run` returns, before the home closes); one that came in as it
    stopped (a resume, a reload after consent was given) is answered after
    the recorder's shutdown removed every hook: it must not install them
    again, with nothing left to remove them (keys hooked in a stopped tray)."""
    from cleartrace.actions import consent
    from cleartrace.capture._x11 import X11Backend
    from cleartrace.categories import USUAL
    from cleartrace.home import Home
    from cleartrace.recorder import Recorder
    from cleartrace.runtime import serve

    home = Home.open(private_home, create=True)
    backend = X11Backend()
    try:
        consent.give(home, list(USUAL))
        recorder = Recorder(home, backend)
        running = threading.Thread(target=recorder.run)
        running.start()
        try:
            serve(recorder, {"cmd": "pause", "for_s": 900})
        finally:
            recorder.stop()
            running.join(15)
        assert not backend.hooks()
        # What an answerer the control server's close now waits for does:
        serve(recorder, {"cmd": "resume"})
        assert not backend.hooks()
    finally:
        backend.close()
        home.close()


@pytest.mark.xserver
def test_a_pause_answered_as_the_recorder_starts_waits_for_its_first_session(
    private_home: Paths, xserver: Any
) -> None:
    """The control server answers on threads of its own, and every act of the
    recorder that writes the ledger does so under the recorder's lock, on the
    home's one connection: a recorder starting (its consent read, its first
    session and its `session.started` record) must take that lock too, or a
    pause answered at that moment starts a transaction inside the session's
    ("cannot start a transaction within a transaction"), and is lost."""
    import time

    from cleartrace.actions import consent
    from cleartrace.capture._x11 import X11Backend
    from cleartrace.categories import USUAL
    from cleartrace.home import Home
    from cleartrace.recorder import Recorder
    from cleartrace.runtime import serve
    from tests.support.waiting import wait_for

    home = Home.open(private_home, create=True)
    backend = X11Backend()
    try:
        consent.give(home, list(USUAL))
        recorder = Recorder(home, backend)
        before = home.ledger.head()
        running = threading.Thread(target=recorder.run)
        try:
            # Held as an answerer holds it: the starting recorder must wait for it.
            with recorder._lock:
                running.start()
                time.sleep(0.5)
                assert home.ledger.head() == before
            wait_for(lambda: recorder._writer is not None, what="the first session")
            serve(recorder, {"cmd": "pause", "for_s": 900})
            with recorder._lock:
                kinds = [r["kind"] for r in home.ledger.records()]
            assert kinds.index("session.started") < kinds.index("recording.paused")
        finally:
            recorder.stop()
            running.join(15)
    finally:
        backend.close()
        home.close()
