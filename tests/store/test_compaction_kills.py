"""kill -9 at every SQL statement of closing a session (compaction, then the
state change and the checkpoint): at the next open the session is closed
with every event, in order, and its counts, whether the kill left the small
chunks (recovery compacts them) or the compacted ones.

A child process records a session of small chunks (rows, as a flush writes
them) and closes it, SIGKILLed by SQLite's trace hook just before its Nth
statement after the recording, for N = 1, 2, ... until it completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.keys import load_keys
from cleartrace.store.sessions import Store

# Shared by the child (which records it) and the test (which expects it).
EVENTS_SOURCE = textwrap.dedent(
    """
    def chunks():
        out = []
        t = 5 * 10**12
        for i in range(12):
            batch = []
            if i % 5 == 0:
                batch.append((t, 7, 0, 0, 800, 600, ("app%d" % (i // 5), "title")))
            for j in range(6):
                t += 9_000_000 + (i * 7919 + j * 104_729) % 1_000_000
                batch.append((t, 3, 100 + i, 200 - j, 0, 0, None))
                t += 41_000_123
                batch.append((t, 1 + j % 2, 97 + i, 0, 0, 0, None))
            out.append(batch)
        return out
    """
)

CHILD = EVENTS_SOURCE + textwrap.dedent(
    """
        import os, signal, sys
        from cleartrace.paths import Paths
        from cleartrace.store import compaction
        from cleartrace.store.keys import load_keys
        from cleartrace.store.sessions import Store

        compaction.COMPACT_EVENTS = 25  # several compacted chunks
        kill_at = int(sys.argv[1])
        paths = Paths.from_env()
        store = Store.open(paths, load_keys(paths, create=False))
        handle = store.begin_session(10**18, 5 * 10**12)
        for batch in chunks():
            store.append_chunk(handle, batch)
        seen = [0]

        def trace(statement):
            seen[0] += 1
            if seen[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        store._conn.set_trace_callback(trace)
        store.end_session(handle, 10**18 + 10**11)
        print(seen[0])
        """
)


def expected() -> list[tuple[Any, ...]]:
    scope: dict[str, Any] = {}
    exec(EVENTS_SOURCE, scope)  # noqa: S102 - the test's own constant source
    return [(t - t % 1000, *rest) for batch in scope["chunks"]() for t, *rest in batch]


def test_closing_a_session_killed_at_any_statement_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = expected()
    kinds = [e[1] for e in want]
    counts = {"app_focus": kinds.count(7), "keys": kinds.count(1) + kinds.count(2)}
    counts["mouse_move"] = kinds.count(3)
    n = 1
    while True:
        home = tmp_path / f"home-{n}"
        monkeypatch.setenv("CLEARTRACE_HOME", str(home))
        paths = Paths.from_env()
        ensure_private_dirs(paths)
        keys = load_keys(paths, create=True)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(n)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
            check=False,
        )
        killed = done.returncode == -signal.SIGKILL
        assert killed or done.returncode == 0, done.stderr
        store = Store.open(paths, keys)  # recovers a session the kill left open
        try:
            (info,) = store.list_sessions()
            assert info.state == "pending"
            got = [
                (e.t_ns, int(e.kind), e.a, e.b, e.c, e.d, (e.app, e.title) if e.app else None)
                for e in store.read_events(info.id)
            ]
            assert got == want, n
            assert info.counts == counts
            assert info.applications == ["app0", "app1", "app2"]
            assert store.chunk_count(info.id) >= 1
        finally:
            store.close()
        if not killed:
            assert n > 10  # the close really ran statement by statement
            return
        n += 1
