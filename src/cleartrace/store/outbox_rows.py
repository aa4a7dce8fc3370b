"""The `outbox` table and the upload marks on session rows.

Which bundle is due and when one must not leave is the upload package's
business (upload/outbox.py); this module only moves the rows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cleartrace.store.db import translate_errors
from cleartrace.store.session_state import SessionState

__all__ = [
    "UPLOADED_AT",
    "Queued",
    "add",
    "bundle",
    "drop",
    "drop_for_session",
    "forget_uploaded_at",
    "header_prefix",
    "mark_uploaded",
    "may_queue",
    "queued",
    "queued_at",
    "uploaded_before",
]

#: meta key prefix: when a session's bundle was acknowledged (wall-clock ns).
UPLOADED_AT = "uploaded_at:"


@dataclass(frozen=True, slots=True)
class Queued:
    """One bundle waiting in the outbox (its bytes stay in the database)."""

    name: str
    session_id: str | None
    created_ns: int
    head_seq: int
    size: int


def queued(conn: sqlite3.Connection, path: Path) -> list[Queued]:
    """Waiting bundles, oldest first.

    Raises:
        StoreError: the file cannot be read.
    """
    sql = (
        "SELECT name, session_id, created_ns, head_seq, length(bundle) FROM outbox"
        " ORDER BY created_ns, rowid"
    )
    with translate_errors(path):
        return [Queued(*row) for row in conn.execute(sql)]


def queued_at(conn: sqlite3.Connection, path: Path, name: str) -> tuple[int, str | None] | None:
    """(ledger head it was built at, session id) of a queued bundle; None if gone.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        row = conn.execute(
            "SELECT head_seq, session_id FROM outbox WHERE name=?", (name,)
        ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def bundle(conn: sqlite3.Connection, path: Path, name: str) -> bytes | None:
    """The bytes of a queued bundle; None if it is gone.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        row = conn.execute("SELECT bundle FROM outbox WHERE name=?", (name,)).fetchone()
    return None if row is None else bytes(row[0])


def header_prefix(conn: sqlite3.Connection, path: Path, name: str, size: int) -> bytes | None:
    """The first `size` bytes of a queued bundle (its header); None if it is gone.

    Raises:
        StoreError: the file cannot be read.
    """
    sql = "SELECT substr(bundle, 1, ?) FROM outbox WHERE name=?"
    with translate_errors(path):
        row = conn.execute(sql, (size, name)).fetchone()
    return None if row is None else bytes(row[0])


def may_queue(conn: sqlite3.Connection, session_id: str) -> bool:
    """Whether the session is approved and not being deleted (inside the
    caller's transaction, so no hold or deletion comes between)."""
    sql = "SELECT 1 FROM sessions WHERE id=? AND state=? AND wrapped_key IS NOT NULL"
    return conn.execute(sql, (session_id, SessionState.APPROVED)).fetchone() is not None


def add(
    conn: sqlite3.Connection,
    name: str,
    session_id: str | None,
    created_ns: int,
    head_seq: int,
    data: bytes,
) -> None:
    """Queue a bundle inside the caller's transaction; a name already queued stays."""
    conn.execute(
        "INSERT OR IGNORE INTO outbox(name, session_id, created_ns, head_seq, bundle)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, session_id, created_ns, head_seq, data),
    )


def drop(conn: sqlite3.Connection, name: str) -> bool:
    """Remove a queued bundle inside the caller's transaction; False if it was gone."""
    return conn.execute("DELETE FROM outbox WHERE name=?", (name,)).rowcount > 0


def drop_for_session(conn: sqlite3.Connection, session_id: str) -> None:
    """Remove any bundle built for a session (held, redacted or deleted since:
    it holds what the person removed), inside the caller's transaction."""
    conn.execute("DELETE FROM outbox WHERE session_id=?", (session_id,))


def mark_uploaded(conn: sqlite3.Connection, session_id: str, at_ns: int) -> None:
    """The collector holds the session: its state, and when (for retention),
    inside the caller's transaction."""
    conn.execute("UPDATE sessions SET state=? WHERE id=?", (SessionState.UPLOADED, session_id))
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (UPLOADED_AT + session_id, at_ns)
    )


def forget_uploaded_at(conn: sqlite3.Connection, session_id: str) -> None:
    """Drop the upload time of a session being shredded (inside the caller's transaction)."""
    conn.execute("DELETE FROM meta WHERE key=?", (UPLOADED_AT + session_id,))


def uploaded_before(conn: sqlite3.Connection, path: Path, cutoff_ns: int) -> list[str]:
    """Uploaded sessions acknowledged at or before `cutoff_ns`, oldest first.

    Raises:
        StoreError: the file cannot be read.
    """
    sql = (
        "SELECT s.id FROM sessions s JOIN meta m ON m.key = ? || s.id"
        " WHERE s.state=? AND m.value <= ? ORDER BY m.value"
    )
    with translate_errors(path):
        return [
            str(r[0]) for r in conn.execute(sql, (UPLOADED_AT, SessionState.UPLOADED, cutoff_ns))
        ]
