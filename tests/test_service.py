"""The tray's service on a real X server: consent starts the recorder, acts reach it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cleartrace.categories import USUAL, Category
from cleartrace.paths import Paths
from cleartrace.service import Service
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver


@pytest.fixture
def service(private_home: Paths, xserver: Any) -> Iterator[Service]:
    svc = Service(private_home)
    try:
        yield svc
    finally:
        svc.close()


def test_nothing_runs_before_consent_and_consent_starts_recording(
    service: Service, xdo: Callable[..., str], typing_window: str
) -> None:
    service.start()
    snap = service.snapshot()
    assert (snap.state, snap.hooks, snap.consent_asked) == ("off", (), False)
    service.give([Category.KEYS, Category.APP_FOCUS])
    snap = service.snapshot()
    assert snap.state == "recording"
    assert snap.hooks == ("keyboard", "focus")
    xdo("type", "--delay", "20", "abc")
    wait_for(lambda: service.snapshot().session_counts.get("keys", 0) >= 6, what="keys stored")
    assert service.snapshot().today_counts["keys"] >= 6


def test_pause_resume_and_withdrawal_reach_the_recorder(service: Service) -> None:
    service.give(list(USUAL))
    service.pause(900)
    snap = service.snapshot()
    assert (snap.state, snap.hooks) == ("paused", ())
    assert snap.paused_until is not None
    service.resume()
    assert service.snapshot().hooks
    started = time.monotonic()
    service.withdraw(list(Category))
    wait_for(lambda: not service.snapshot().hooks, timeout=1.0, what="hooks removed")
    assert time.monotonic() - started < 1.0
    assert service.snapshot().state == "off"
    kinds = [r["kind"] for r in service.ledger().records]
    assert kinds[-3:] == ["recording.paused", "recording.resumed", "consent.withdrawn"]


def test_review_and_history_after_a_recording(
    service: Service, xdo: Callable[..., str], typing_window: str
) -> None:
    service.give([Category.KEYS, Category.CLICKS])
    xdo("type", "--delay", "20", "hello")
    wait_for(lambda: service.snapshot().session_counts.get("keys", 0) >= 10, what="keys stored")
    service.close()  # flushes and closes the session
    ((info, auto),) = service.sessions()
    assert info.state == "pending"
    assert auto is not None
    review = service.review(info.id)
    assert [s.text for s in review.streams] == ["hello"]
    assert sum(m.keys for m in review.activity) == 5
    selection = service.select_span(info.id, 1, 0, 1)
    done = service.redact(selection)
    assert done.removed == {"keys": 2}
    assert [s.text for s in service.review(info.id).streams] == ["ello"]
    assert service.approve(info.id)
    view = service.ledger()
    assert view.verified
    assert [r["kind"] for r in view.records][-2:] == ["session.redacted", "session.approved"]


def test_no_display_means_cannot_record_with_the_reason(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    svc = Service(private_home)
    try:
        svc.give([Category.KEYS])
        snap = svc.snapshot()
        assert snap.state == "cannot record"
        assert snap.reason is not None
        assert "DISPLAY is not set" in snap.reason
        assert snap.hooks == ()
    finally:
        svc.close()


def test_the_tray_asks_the_display_nothing_while_it_records(
    private_home: Paths, xserver: Any
) -> None:
    # The tray refreshes its status every second; while the recorder runs the
    # display is known to work, and asking it again (up to a 3 s timeout on a
    # busy X server) would stall every act queued behind the refresh.
    env = dict(os.environ)
    svc = Service(private_home, env=env)
    sockets = Path("/tmp/.X11-unix")
    sockets.mkdir(mode=0o1777, exist_ok=True)
    number = next(n for n in range(700, 800) if not (sockets / f"X{n}").exists())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sockets / f"X{number}"))
    listener.listen(8)
    try:
        svc.give([Category.KEYS])
        assert svc.snapshot().state == "recording"
        env["DISPLAY"] = f":{number}"  # would be asked, were it asked: it never answers
        for _ in range(3):
            assert svc.snapshot().state == "recording"
        listener.setblocking(False)
        try:
            asked, _ = listener.accept()
        except BlockingIOError:
            return  # nobody connected
        asked.close()
        pytest.fail("a status refresh connected to the display while recording")
    finally:
        listener.close()
        (sockets / f"X{number}").unlink()
        svc.close()
