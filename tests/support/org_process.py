"""The collector as a real process on 127.0.0.1: start it, read its URL, stop it.

Every collector process in the tests starts here; `orgkit.Collector` is the
same process for an organisation whose signed policy names its URL.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartrace.org.state import open_state
from tests.support.cli import CLI


@dataclass
class RunningCollector:
    url: str
    data: Path
    proc: subprocess.Popen[str]
    log: Path
    #: The `--state` URL it serves (None: DATA/collector.db).
    state: str | None = None

    def tokens(self, n: int = 1) -> list[str]:
        return issue_tokens(self.data, self.state, n)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=40)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def stderr(self) -> str:
        return self.log.read_text()


def issue_tokens(data: Path, state: str | None = None, n: int = 1) -> list[str]:
    """`n` enrolment tokens from the collector's state at DATA (or `state`), as
    `org token` issues them (the first act also makes DATA's witness key)."""
    registry = open_state(data, state)
    try:
        return registry.issue_tokens(n)
    finally:
        registry.close()


def start_collector(
    data: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    port: int = 0,
    state: str | None = None,
) -> RunningCollector:
    """`cleartrace org serve --data DATA --port PORT [--state URL] ARGS`, once it
    printed its URL.

    Port 0 lets the system choose; a fixed one is for a collector whose URL was
    known before it started, or that starts again where it was. `state` is a
    PostgreSQL URL (the `postgres` fixture's), None for DATA/collector.db.
    """
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}-collector.log"
    shared = [] if state is None else ["--state", state]
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "org", "serve", "--data", str(data), "--port", str(port), *shared, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith(("http://", "https://")):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError(f"the collector did not start: {log.read_text()}")
    return RunningCollector(url=line, data=data, proc=proc, log=log, state=state)


@contextlib.contextmanager
def collector_running(data: Path, *args: str, **kw: object) -> Iterator[RunningCollector]:
    running = start_collector(data, *args, **kw)  # type: ignore[arg-type]
    try:
        yield running
    finally:
        running.stop()


def leftovers(root: Path) -> Sequence[Path]:
    """Temporary files a write left behind (there must be none)."""
    return [p for p in root.rglob(".*") if p.is_file()]
