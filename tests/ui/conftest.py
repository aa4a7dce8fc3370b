"""UI fixtures: a real Service on the test's private home, and its Runner.

The `service` gets an empty environment, so it never finds a display: no test
using it can install a hook on the machine running the tests, whatever DISPLAY
says. Consent is still written and read for real; the state is then
"cannot record".

Tests of a recording tray use `live_runner` instead: its service records from
a private Xvfb (`xserver`), while Qt itself stays on the offscreen platform.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.runner import Runner


@pytest.fixture
def service(private_home: Paths) -> Service:
    return Service(private_home, env={})


@pytest.fixture
def runner(service: Service, qtbot: QtBot) -> Iterator[Runner]:
    """The runner, stopped at teardown (its worker ends, the service closes)."""
    r = Runner(service)
    yield r
    r.stop()


@pytest.fixture
def settle(qtbot: QtBot, runner: Runner) -> Callable[[], None]:
    """`settle()` waits until every runner call has been delivered."""

    def wait() -> None:
        qtbot.waitUntil(lambda: runner.pending == 0, timeout=10_000)

    return wait


@pytest.fixture
def xserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bare Xvfb (tests/capture's fixture, minimal); DISPLAY names it. Killed by PID.

    `-noreset`: Qt is offscreen here, so when a test's last X client (a hook)
    disconnects the server would reset, and reset the next connection with it.
    """
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp"),
            *("-ardelay", "60000", "-noreset"),
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    try:
        number, deadline = b"", time.monotonic() + 10
        while not number.endswith(b"\n"):  # two writes: keep the pipe open (PLATFORM-NOTES)
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"Xvfb did not start (exit status {proc.poll()})")
            number += os.read(read_fd, 16)
        monkeypatch.setenv("DISPLAY", f":{number.decode().strip()}")
        yield os.environ["DISPLAY"]
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def xdo(xserver: str) -> Callable[..., None]:
    """Run xdotool on the test's X server."""
    return lambda *args: subprocess.run(["xdotool", *args], check=True, timeout=30)


@pytest.fixture
def live_runner(private_home: Paths, xserver: str, qtbot: QtBot) -> Iterator[Runner]:
    """A runner whose service records from `xserver`; stopped (recorder too) first."""
    r = Runner(Service(private_home))
    yield r
    r.stop()


@pytest.fixture
def call(qtbot: QtBot) -> Callable[..., Any]:
    """`call(runner, fn)`: `fn(service)` on the runner's worker, its result back here."""

    def run(runner: Runner, fn: Callable[[Service], Any]) -> Any:
        out: list[tuple[Any, str | None]] = []
        runner.call(fn, lambda r: out.append((r, None)), lambda e: out.append((None, e)))
        qtbot.waitUntil(lambda: bool(out), timeout=15_000)
        result, error = out[0]
        assert error is None, error
        return result

    return run
