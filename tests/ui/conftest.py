"""UI fixtures: a real Service on the test's private home, and its Runner.

The `service` gets an empty environment, so it never finds a display: no test
using it can install a hook on the machine running the tests, whatever DISPLAY
says. Consent is still written and read for real; the state is then
"cannot record".

Tests of a recording tray use `live_runner` instead: its service records from
a private Xvfb (`xserver`, tests/support/xserver.py), while Qt itself stays
on the offscreen platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from tests.support.xserver import XServer


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
def live_runner(private_home: Paths, xserver: XServer, qtbot: QtBot) -> Iterator[Runner]:
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
