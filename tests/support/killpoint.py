"""Run the cleartrace CLI and SIGKILL it just before its Nth SQL statement.

    python tests/killpoint.py N cleartrace-args...

Statements are counted from the first `BEGIN` on any connection (opening the
home and reading come before, and are not the point), through SQLite's own
trace hook, so the process dies between two real statements of the real code
path, exactly as a kill -9 or a power cut would leave the file. With N past
the last statement the command runs to completion; the number of statements
it ran is printed on stderr as 'killpoint: N statements'.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

_KILL_AT = int(sys.argv[1])
_seen = [0, False]  # statements counted, armed (a BEGIN was seen)
_connect = sqlite3.connect


def _trace(statement: str) -> None:
    if not _seen[1] and statement.lstrip().upper().startswith("BEGIN"):
        _seen[1] = True
    if _seen[1]:
        _seen[0] += 1
        if _seen[0] == _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


def _traced_connect(*args, **kwargs):  # type: ignore[no-untyped-def]
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(_trace)
    return conn


sqlite3.connect = _traced_connect

from cleartrace.cli import main  # noqa: E402 - after the hook, so every connection is traced

code = main(sys.argv[2:])
print(f"killpoint: {_seen[0]} statements", file=sys.stderr)
raise SystemExit(code)
