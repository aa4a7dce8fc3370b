"""A `cleartrace record` process on the test display, and what it reports.

Tests wait on what the recorder says it has stored (`stored`, from the control
socket's status counts) rather than sleeping for a guessed time: the counts
move only after a batch is written to the store, so once they reach the
expected number the events are on disk.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleartrace.control import request
from cleartrace.paths import Paths
from tests.support.cli import CLI, ct
from tests.support.waiting import wait_for
from tests.support.xserver import XServer

__all__ = ["Recording", "sessions", "show_text", "start_recorder", "status", "stored"]


def status(paths: Paths) -> dict[str, Any]:
    """The running recorder's status, as `cleartrace status --json` shows it.

    Raises:
        RecorderNotRunning: no recorder listens on the control socket.
    """
    reply: dict[str, Any] = request(paths.socket, "status")["status"]
    return reply


def stored(paths: Paths, category: str) -> int:
    """How many events of `category` the recorder has stored in its current session.

    Keys count twice per character typed: the press and the release.
    """
    return int(status(paths)["counts"].get(category, 0))


class Recording:
    """A recorder process started by `start_recorder`; `stop()` ends it like Ctrl+C."""

    def __init__(self, paths: Paths, proc: subprocess.Popen[str]) -> None:
        self.paths = paths
        self.proc = proc

    def hooks(self) -> list[str]:
        return list(status(self.paths)["hooks"])

    def wait_stored(self, category: str, count: int, what: str) -> None:
        """Wait until exactly `count` events of `category` are stored."""
        wait_for(lambda: stored(self.paths, category) == count, what=what)

    def stop(self) -> str:
        """Stop it like Ctrl+C; returns what it said on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return err


def sessions() -> list[dict[str, Any]]:
    """`cleartrace sessions list --json`."""
    out: list[dict[str, Any]] = json.loads(ct("sessions", "list", "--json").stdout)
    return out


def show_text(session_id: str) -> str:
    """The text typed in a session, as `cleartrace sessions show --text` rebuilds it."""
    shown = json.loads(ct("sessions", "show", session_id, "--text", "--json").stdout)
    return "".join(s["text"] for s in shown["text"])


@pytest.fixture
def start_recorder(private_home: Paths, xserver: XServer) -> Iterator[Callable[[], Recording]]:
    """`start_recorder()` runs `cleartrace record` and returns once its hooks are in.

    The recorder gets the environment of the moment it starts (a test may have
    moved CLEARTRACE_HOME), and so does the status it is asked. Every recorder
    started is killed at teardown if the test did not stop it.
    """
    started: list[Recording] = []

    def start() -> Recording:
        paths = Paths.from_env()
        proc = subprocess.Popen(
            [*CLI, "record"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        rec = Recording(paths, proc)
        started.append(rec)
        wait_for(lambda: bool(status(paths)["hooks"]), what="recorder start")
        return rec

    yield start
    for rec in started:
        if rec.proc.poll() is None:
            rec.proc.kill()
        rec.proc.communicate()  # reaps it and closes its pipes
