"""One ClearTrace writer at a time per Iceberg catalog: a lock row in the catalog's database.

The dataset's own lock (DATASET/_cleartrace/lock) is a file lock: it holds
runs on one host apart, not runs on two hosts that share a PostgreSQL
catalog. So a run also claims the row `name = 'cleartrace'` of the table
`cleartrace_writer` in the catalog's own database, for its whole length.
Claiming is an INSERT (the primary key lets one of two racing runs in) or,
for a stale row, an UPDATE conditioned on the holder read (a compare and
swap): neither depends on the database's isolation level.

A row is stale only when that is certain: it names this host and a process
that is gone (its pid is not running, or is running with another start time,
so a reused pid is not mistaken for the holder). A row of another host is
never taken over, since this host cannot tell whether that run is alive;
the error says how to clear it once it is known dead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cleartrace.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["LOCK_TABLE", "catalog_lock", "holder"]

#: The table of the lock row, in the catalog's database next to Iceberg's.
LOCK_TABLE = "cleartrace_writer"
_NAME = "cleartrace"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS cleartrace_writer (name VARCHAR(64) PRIMARY KEY, "
    "holder VARCHAR(512) NOT NULL, since BIGINT NOT NULL)"
)
_SELECT = "SELECT holder FROM cleartrace_writer WHERE name = :n"
_INSERT = "INSERT INTO cleartrace_writer (name, holder, since) VALUES (:n, :h, :s)"
_TAKE = "UPDATE cleartrace_writer SET holder = :h, since = :s WHERE name = :n AND holder = :old"
_FREE = "DELETE FROM cleartrace_writer WHERE name = :n AND holder = :h"


def _started(pid: int) -> str | None:
    """The start time (clock ticks since boot) of process `pid`; None when it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat(5)


def holder() -> str:
    """This process, as the lock row names it: host, pid and its start time."""
    return f"{socket.gethostname()}/{os.getpid()}/{_started(os.getpid())}"


def _stale(row_holder: str) -> bool:
    """Whether the holder is certainly gone: a process of this host no longer running."""
    host, _, rest = row_holder.partition("/")
    pid, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _started(int(pid)) != started


def _claim(conn: Connection, me: str) -> str | None:
    """Claim the row in one transaction; returns the live holder that keeps it, or None."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    row = conn.execute(text(_SELECT), {"n": _NAME}).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    text(_INSERT),
                    {"n": _NAME, "h": me, "s": int(time.time())},
                )
        except IntegrityError:  # another run inserted it first
            return "another run"
        return None
    if not _stale(str(row[0])):
        return str(row[0])
    taken = conn.execute(
        text(_TAKE),
        {"h": me, "s": int(time.time()), "n": _NAME, "old": row[0]},
    )
    return None if taken.rowcount == 1 else "another run"


@contextlib.contextmanager
def catalog_lock(engine: Engine, where: str) -> Iterator[None]:
    """Hold the catalog's writer row for the block (`where` names the catalog in errors).

    Raises:
        UsageError: another run holds it.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    me = holder()
    try:
        with engine.begin() as conn:
            conn.execute(text(_CREATE))
    except IntegrityError:
        # PostgreSQL: two first runs' CREATE TABLE IF NOT EXISTS at once both find
        # no table, and the second to commit fails on the type's name; the table
        # is there now, and this run goes on to claim the row like any other.
        with engine.begin() as conn:
            conn.execute(text(_CREATE))
    with engine.begin() as conn:
        busy = _claim(conn, me)
    if busy is not None:
        raise UsageError(
            f"the Iceberg catalog {where} is in use by {busy} (host/pid/start in its "
            f"{LOCK_TABLE} table): ClearTrace writes a catalog's tables one run at a time; "
            "wait for that run to finish, or, if it is known to be dead, delete that row "
            f"(name '{_NAME}') from {LOCK_TABLE} in the catalog's database"
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(_FREE),
                {"n": _NAME, "h": me},
            )
