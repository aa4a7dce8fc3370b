"""What the benchmarks measure a run by: CPU time and the store's size on disk."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

from cleartrace.paths import Paths

__all__ = ["cpu_s", "disk_bytes"]


def cpu_s() -> float:
    """CPU seconds of this process and of the children it waited for (a long
    session is compacted in one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def disk_bytes(paths: Paths, *, checkpoint: bool = False) -> int:
    """The database and its WAL; the -shm index holds no data. With
    `checkpoint`, the WAL is moved into the database and emptied first, so
    that what a run adds is not offset by what set-up left in it."""
    if checkpoint:
        with closing(sqlite3.connect(paths.db)) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert not busy, "the store's WAL could not be emptied"
    files = (paths.db, paths.db.with_name("store.db-wal"))
    return sum(p.stat().st_size for p in files if p.exists())
