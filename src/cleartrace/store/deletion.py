"""Deleting a session in two commits, resumed after a crash between them.

The first commit destroys the session's wrapped key and sealed summary (the
crypto-shred: from here no chunk can be opened), marks the session `deleted`,
drops any bundle built for it and carries the ledger's "session.deleted" in
the same transaction. It is small, so it succeeds even on a nearly full disk
and costs nothing however long the session was.

The second removes the chunks, redaction markers, per-session meta rows and
the session row. That can be a large write (`secure_delete` zeroes every page);
a process killed before it leaves a row in state `deleted`, which no reader
shows (`Store.list_sessions`, `Store.session`) and which `Store.open` purges on
the next start, without a second ledger record. So a deletion is either not
made at all, or made exactly once and, eventually, wholly.

Versions before the `deleted` state made the same first commit without it: a
session with no wrapped key is one of those, and is purged the same way.
"""

from __future__ import annotations

import sqlite3

__all__ = ["DELETED", "finish", "mark", "pending", "purge"]

#: The state of a session whose key is destroyed and whose rows are going.
DELETED = "deleted"


def mark(conn: sqlite3.Connection, session_id: str) -> bool:
    """First commit (inside the caller's transaction): destroy the key, mark the
    session deleted, and drop what would have left the device for it.

    False, changing nothing, when the session is gone or another deletion
    marked it first: the caller must then not ledger a deletion of its own.
    """
    marked = conn.execute(
        "UPDATE sessions SET wrapped_key=NULL, summary=NULL, state=?, writer_pid=NULL "
        "WHERE id=? AND state!=? AND wrapped_key IS NOT NULL",
        (DELETED, session_id, DELETED),
    ).rowcount
    if not marked:
        return False
    conn.execute("DELETE FROM outbox WHERE session_id=?", (session_id,))
    return True


def purge(conn: sqlite3.Connection, session_id: str) -> None:
    """Second commit (inside the caller's transaction): remove every row of a
    session marked deleted. Idempotent; a session not so marked is left alone."""
    marked = conn.execute(
        "SELECT 1 FROM sessions WHERE id=? AND (state=? OR wrapped_key IS NULL)",
        (session_id, DELETED),
    ).fetchone()
    if marked is None:
        return
    conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
    conn.execute("DELETE FROM redactions WHERE session_id=?", (session_id,))
    # Per-session meta rows are keyed '<name>:<session id>' (the writer token,
    # the chunk high-water mark, when it was uploaded); ids are hex digits, so
    # LIKE matches them literally.
    conn.execute("DELETE FROM meta WHERE key LIKE '%:' || ?", (session_id,))
    conn.execute("DELETE FROM sessions WHERE id=?", (session_id,))


def pending(conn: sqlite3.Connection) -> list[str]:
    """Sessions a deletion marked but did not purge (the process died between)."""
    sql = "SELECT id FROM sessions WHERE (state=? OR wrapped_key IS NULL) ORDER BY id"
    return [str(r[0]) for r in conn.execute(sql, (DELETED,))]


def finish(conn: sqlite3.Connection) -> list[str]:
    """Purge every session left marked deleted (inside the caller's transaction)."""
    ids = pending(conn)
    for session_id in ids:
        purge(conn, session_id)
    return ids
