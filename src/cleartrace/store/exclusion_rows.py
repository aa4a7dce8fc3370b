"""The `excluded_apps` table: the person's exclusions, each name sealed under
its tag, and the plaintext `exclusions` table of versions before tags.

What an exclusion means, and how a name is tagged and sealed, lives in
consent/exclusions.py; this module only moves the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from cleartrace.store.db import CHECKPOINT_DUE, translate_errors

__all__ = [
    "add",
    "has_plaintext_list",
    "mark_checkpoint_due",
    "remove",
    "seal_plaintext_list",
    "sealed_rows",
]

_PLAINTEXT = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='exclusions'"


def sealed_rows(conn: sqlite3.Connection, path: Path) -> list[tuple[str, bytes]]:
    """Every (tag, sealed name).

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        rows = conn.execute("SELECT tag, sealed FROM excluded_apps").fetchall()
    return [(str(tag), bytes(sealed)) for tag, sealed in rows]


def add(conn: sqlite3.Connection, tag: str, sealed: bytes) -> bool:
    """Store one exclusion inside the caller's transaction; False, changing
    nothing, when the tag is already there."""
    if conn.execute("SELECT 1 FROM excluded_apps WHERE tag=?", (tag,)).fetchone():
        return False
    conn.execute("INSERT INTO excluded_apps(tag, sealed) VALUES (?, ?)", (tag, sealed))
    return True


def remove(conn: sqlite3.Connection, tag: str) -> bool:
    """Remove one exclusion inside the caller's transaction; False if it was not there."""
    return conn.execute("DELETE FROM excluded_apps WHERE tag=?", (tag,)).rowcount > 0


def has_plaintext_list(conn: sqlite3.Connection, path: Path) -> bool:
    """Whether the plaintext `exclusions` table of older versions is still there.

    Raises:
        StoreError: the file cannot be read.
    """
    with translate_errors(path):
        return conn.execute(_PLAINTEXT).fetchone() is not None


def seal_plaintext_list(
    conn: sqlite3.Connection, sealed: Callable[[str], tuple[str, bytes]]
) -> bool:
    """Inside the caller's transaction: move every name of the plaintext table
    into `excluded_apps` as `sealed(name)` gives it, and drop that table
    (`secure_delete` zeroes its pages). False when it was gone already."""
    if conn.execute(_PLAINTEXT).fetchone() is None:
        return False
    names = [str(app) for (app,) in conn.execute("SELECT app FROM exclusions")]
    conn.executemany(
        "INSERT OR IGNORE INTO excluded_apps(tag, sealed) VALUES (?, ?)",
        [sealed(n) for n in names],
    )
    conn.execute("DELETE FROM exclusions")
    conn.execute("DROP TABLE exclusions")
    return True


def mark_checkpoint_due(conn: sqlite3.Connection, path: Path) -> None:
    """Note that the WAL still holds pages that must go (`Store.open` empties it).

    Raises:
        StoreError: the file cannot be written.
    """
    with translate_errors(path):
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, 1)", (CHECKPOINT_DUE,))
