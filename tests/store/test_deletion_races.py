"""Deleting a session against other writers: the deletion is ledgered once,
whoever gets there first, so the ledger keeps verifying."""

from __future__ import annotations

import sqlite3
import threading
import time

from cleartrace.errors import UnknownSession
from cleartrace.events import Kind, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.cli import ct


def recorded(home: Home) -> str:
    handle = home.store.begin_session(time.time_ns(), 0)
    events = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))]
    events += [(1000 + i, int(Kind.KEY_DOWN), keysym_of_char("a"), 0, 0, 0, None) for i in range(5)]
    home.store.append_chunk(handle, events)
    home.store.end_session(handle, time.time_ns())
    return handle.id


def test_two_deletions_of_one_session_at_once_write_one_ledger_record(
    private_home: Paths,
) -> None:
    homes = [Home.open(private_home, create=True) for _ in range(2)]
    session = recorded(homes[0])
    outcomes: list[str] = []

    def delete(home: Home) -> None:
        try:
            home.store.delete_session(
                session,
                lambda conn: home.ledger.append_in(conn, "session.deleted", session=session),
            )
            outcomes.append("deleted")
        except UnknownSession:
            outcomes.append("unknown")

    # A writer holds the store, so both deleters get past their checks and
    # wait for it; then they run one after the other.
    holder = sqlite3.connect(private_home.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=delete, args=(h,)) for h in homes]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # both are waiting for the write lock by now
    finally:
        holder.execute("COMMIT")
        holder.close()
    for t in threads:
        t.join(timeout=30)
    try:
        assert sorted(outcomes) == ["deleted", "unknown"]
        records = homes[0].ledger.records()
        assert [r["kind"] for r in records].count("session.deleted") == 1
        exported = private_home.home.parent / "ledger.jsonl"
        assert ct("ledger", "export", "--out", str(exported)).returncode == 0
        verified = ct("audit", "verify", str(exported), check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for h in homes:
            h.close()
