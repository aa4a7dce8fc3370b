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

import logging
import sqlite3
from collections.abc import Callable

from cleartrace.errors import DiskFull, UnknownSession
from cleartrace.store import outbox_rows
from cleartrace.store.db import transaction
from cleartrace.store.reading import StoreReader
from cleartrace.store.session_state import SessionState

__all__ = ["Deleting", "finish", "mark", "pending", "purge"]

log = logging.getLogger(__name__)


def mark(conn: sqlite3.Connection, session_id: str) -> bool:
    """First commit (inside the caller's transaction): destroy the key, mark the
    session deleted, and drop what would have left the device for it.

    False, changing nothing, when the session is gone or another deletion
    marked it first: the caller must then not ledger a deletion of its own.
    """
    marked = conn.execute(
        "UPDATE sessions SET wrapped_key=NULL, summary=NULL, state=?, writer_pid=NULL "
        "WHERE id=? AND state!=? AND wrapped_key IS NOT NULL",
        (SessionState.DELETED, session_id, SessionState.DELETED),
    ).rowcount
    if not marked:
        return False
    outbox_rows.drop_for_session(conn, session_id)
    return True


def purge(conn: sqlite3.Connection, session_id: str) -> None:
    """Second commit (inside the caller's transaction): remove every row of a
    session marked deleted. Idempotent; a session not so marked is left alone."""
    marked = conn.execute(
        "SELECT 1 FROM sessions WHERE id=? AND (state=? OR wrapped_key IS NULL)",
        (session_id, SessionState.DELETED),
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
    return [str(r[0]) for r in conn.execute(sql, (SessionState.DELETED,))]


def finish(conn: sqlite3.Connection) -> list[str]:
    """Purge every session left marked deleted (inside the caller's transaction)."""
    ids = pending(conn)
    for session_id in ids:
        purge(conn, session_id)
    return ids


class Deleting(StoreReader):
    """`StoreReader` plus `delete_session`, the two commits above."""

    def delete_session(
        self, session_id: str, record: Callable[[sqlite3.Connection], object] | None = None
    ) -> None:
        """Crypto-shred, then remove: the wrapped key goes first, in its own commit.

        That first transaction also marks the session deleted, so from then on
        it is gone for every reader (listing, review, upload), and `record`
        runs inside it (the ledger's "session.deleted"): the key is gone
        exactly when the record exists. The second removes the chunks; if the
        process dies between the two, the next `Store.open` finishes the job
        without a second record (see `store.deletion`).

        Once the first commit is made the deletion is done: a full disk in
        the second is logged, and the next `Store.open` with room finishes it.

        Raises:
            UnknownSession: no such session, or another process deleted it first
                (checked inside the first transaction: one deletion, one record).
            UsageError: the session is being recorded.
            DiskFull: no room for the first commit; nothing was changed.
        """
        self._refuse_live(session_id, "delete")
        with transaction(self._conn, self._paths.db) as conn:
            if not mark(conn, session_id):
                raise UnknownSession(
                    f"session {session_id[:12]} was deleted meanwhile by another process"
                )
            if record is not None:
                record(conn)
        try:
            with transaction(self._conn, self._paths.db) as conn:
                purge(conn, session_id)
            self._checkpoint()
        except DiskFull:
            log.warning(
                "session %s is deleted (its key is destroyed); the disk is full, so its "
                "chunks are removed on a later start",
                session_id[:12],
            )
