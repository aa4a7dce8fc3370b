"""Driving `cleartrace` as a subprocess in capture tests, and waiting on a recorder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from cleartrace.control import request
from cleartrace.errors import RecorderNotRunning
from cleartrace.paths import Paths


def ct(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cleartrace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"cleartrace {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def status(paths: Paths) -> dict[str, Any]:
    reply: dict[str, Any] = request(paths.socket, "status")["status"]
    return reply


def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except RecorderNotRunning:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Recording:
    def __init__(self, paths: Paths, proc: subprocess.Popen[str]) -> None:
        self.paths = paths
        self.proc = proc

    def hooks(self) -> list[str]:
        return list(status(self.paths)["hooks"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


def sessions() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(ct("sessions", "list", "--json").stdout)
    return out


def show_text(session_id: str) -> str:
    shown = json.loads(ct("sessions", "show", session_id, "--text", "--json").stdout)
    return "".join(s["text"] for s in shown["text"])
