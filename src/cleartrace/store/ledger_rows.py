"""The `ledger` table: the consent ledger's rows, read and appended.

What a record means, how it is signed and chained, lives in the consent
package; this module only moves rows in and out of the store file. Every
read decodes through `store.db.translate_errors`, so a damaged row is a
`StoreCorrupt` naming the file, not a crash in whoever reads it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cleartrace.store.db import connect, decode_object, translate_errors

__all__ = [
    "any_after",
    "append",
    "hash_at",
    "head",
    "records",
    "records_after",
    "records_in",
    "texts",
    "texts_and_records",
]

_ALL = "SELECT seq, record FROM ledger ORDER BY seq"


def _decoded(rows: Iterable[tuple[Any, Any]]) -> list[dict[str, Any]]:
    return [decode_object(text, f"ledger record {seq}") for seq, text in rows]


def records(conn: sqlite3.Connection, path: Path) -> list[dict[str, Any]]:
    """Every record of the store file at `path`, oldest first, read in one
    statement (one snapshot). Reading needs no key.

    Raises:
        StoreCorrupt: a row does not decode to a record, or the file is damaged.
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        return _decoded(conn.execute(_ALL).fetchall())


def records_in(db: Path) -> list[dict[str, Any]]:
    """Every record of the store file `db` on a connection of its own; [] when
    there is no file yet. For readers that hold no key (`status`, `ledger show`).

    Raises:
        StoreCorrupt, StoreError: see `records`.
    """
    if not db.exists():
        return []
    conn = connect(db)
    try:
        return records(conn, db)
    finally:
        conn.close()


def records_after(conn: sqlite3.Connection, path: Path, seq: int) -> list[dict[str, Any]]:
    """The records after `seq`, oldest first, read in one snapshot.

    Raises:
        StoreCorrupt, StoreError: see `records`.
    """
    with translate_errors(path):
        rows = conn.execute(
            "SELECT seq, record FROM ledger WHERE seq > ? ORDER BY seq", (seq,)
        ).fetchall()
        return _decoded(rows)


def texts(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Every record as stored (canonical JSON), oldest first, in one snapshot:
    an export carries these bytes unchanged.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        return [str(text) for _seq, text in conn.execute(_ALL).fetchall()]


def texts_and_records(
    conn: sqlite3.Connection, path: Path
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every record as stored and decoded, from one read: what a viewer shows
    is then exactly what it verifies.

    Raises:
        StoreCorrupt, StoreError: see `records`.
    """
    with translate_errors(path):
        rows = conn.execute(_ALL).fetchall()
        return [str(text) for _seq, text in rows], _decoded(rows)


def any_after(conn: sqlite3.Connection, path: Path, seq: int, kinds: Iterable[str]) -> bool:
    """Whether a record after `seq` may be of one of `kinds`: one indexed range
    read on the text, without decoding anything. It may say yes for a record
    merely mentioning a kind; never no for one of that kind.

    Raises:
        StoreError: the file cannot be read.
    """
    wanted = list(kinds)
    clauses = " OR ".join("record LIKE ?" for _ in wanted)
    sql = f"SELECT 1 FROM ledger WHERE seq > ? AND ({clauses}) LIMIT 1"  # noqa: S608 - fixed text
    with translate_errors(path):
        return conn.execute(sql, (seq, *(f"%{kind}%" for kind in wanted))).fetchone() is not None


def head(conn: sqlite3.Connection, path: Path) -> tuple[int, str] | None:
    """(seq, hash) of the newest record, or None for an empty ledger.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        row = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def newest(conn: sqlite3.Connection, path: Path) -> tuple[int, str, str] | None:
    """(seq, hash, record text) of the newest record, or None for an empty ledger.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        row = conn.execute(
            "SELECT seq, hash, record FROM ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def hash_at(conn: sqlite3.Connection, path: Path, seq: int) -> str | None:
    """The hash of record `seq`, None if there is none.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        row = conn.execute("SELECT hash FROM ledger WHERE seq=?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def append(conn: sqlite3.Connection, seq: int, record_hash: str, text: str) -> None:
    """Store one record inside the caller's open transaction (which translates
    its errors); `seq` is the primary key, so a fork of the chain is refused."""
    conn.execute("INSERT INTO ledger(seq, hash, record) VALUES (?, ?, ?)", (seq, record_hash, text))
