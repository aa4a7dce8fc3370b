"""Rotating the master key: everything it seals, rewrapped to a new key at once.

The order makes a crash at any point leave a home that one of the two keys
opens, and `finish_rotation` (run by every `Home.open`) completes or undoes
what a crash interrupted:

1. the new key is staged beside the old one (`keys.stage_master`);
2. one transaction rewraps every value in `wrapped.WRAPPED_BY_MASTER` and
   records it in the ledger (the caller's `record`);
3. the new key replaces the old one (`keys.promote_master`);
4. the WAL is checkpointed and truncated, so the old wrapped values do not
   live on in it.

A crash before 2 commits leaves the store sealed by the old key and a staged
key that opens nothing: it is discarded. A crash after leaves a store that
only the staged key opens: it is promoted. Once done, a copy of the old key
unwraps nothing.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt, WrongKey
from cleartrace.paths import Paths
from cleartrace.store.crypto import seal, unseal
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.store.keys import (
    Keys,
    discard_staged_master,
    promote_master,
    stage_master,
    staged_master,
)
from cleartrace.store.wrapped import KEY_CHECK, KEY_CHECK_AAD, WRAPPED_BY_MASTER

__all__ = ["finish_rotation", "master_opens", "require_current_master", "rotate_master_key"]

log = logging.getLogger(__name__)

#: Told each step as it is reached: "staged", "rewrapped" (inside the
#: transaction, before it commits), "committed", "promoted".
Step = Callable[[str], None]
_CHECKPOINT_TRIES = 20


def master_opens(conn: sqlite3.Connection, master: bytes) -> bool:
    """Whether `master` opens the store's key check (False when there is none yet)."""
    row = conn.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
    if row is None:
        return False
    try:
        return unseal(master, bytes(row[0]), KEY_CHECK_AAD) == KEY_CHECK
    except InvalidTag:
        return False


def require_current_master(conn: sqlite3.Connection, db: Path, master: bytes) -> None:
    """Inside a write transaction: refuse to wrap with a master key that a
    rotation in another process has replaced (the value would open nothing).

    Raises:
        WrongKey: `master` no longer opens the store.
    """
    if not master_opens(conn, master):
        raise WrongKey(
            f"the master key of {db} was changed by another process (cleartrace keys "
            "rotate); nothing was written: restart this program to load the new key"
        )


def _rewrap(conn: sqlite3.Connection, db: Path, old: bytes, new: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in WRAPPED_BY_MASTER:
        counts[kind.what] = 0
        for row_id, sealed in conn.execute(kind.select).fetchall():
            aad = kind.aad(str(row_id))
            try:
                value = unseal(old, bytes(sealed), aad)
            except InvalidTag:
                raise StoreCorrupt(
                    f"the {kind.what} {str(row_id)[:12]} in {db} does not open with the master "
                    "key; nothing was rotated (delete that session or restore a backup first)"
                ) from None
            conn.execute(kind.update, (seal(new, value, aad), row_id))
            counts[kind.what] += 1
    return counts


def _checkpoint(conn: sqlite3.Connection, db: Path) -> None:
    with translate_errors(db):
        for _ in range(_CHECKPOINT_TRIES):
            (busy, _log, _done) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)
    log.warning("%s-wal is still in use by a reader; emptied on a later checkpoint", db)


def rotate_master_key(
    paths: Paths,
    keys: Keys,
    *,
    record: Callable[[sqlite3.Connection], object] | None = None,
    step: Step | None = None,
) -> tuple[Keys, dict[str, int]]:
    """Replace the master key by a new random one; returns the new `Keys` and
    how many values of each kind (`MasterSealed.what`) were rewrapped.
    `record` runs inside the rewrap transaction (the ledger's "key.rotated").

    Raises:
        WrongKey: `keys.master` does not open the store.
        StoreCorrupt: a wrapped value does not open (nothing is changed).
        KeyStorageError: the new key could not be kept.
        DiskFull, StoreError: the store could not be written (nothing is changed).
    """
    tell = step or (lambda _name: None)
    conn = connect(paths.db)
    try:
        with translate_errors(paths.db):
            if not master_opens(conn, keys.master):
                raise WrongKey(
                    f"the master key in {keys.location} does not open {paths.db}; "
                    "nothing was rotated"
                )
        new = secrets.token_bytes(32)
        stage_master(paths, keys, new)
        tell("staged")
        try:
            with transaction(conn, paths.db) as txn:
                counts = _rewrap(txn, paths.db, keys.master, new)
                if record is not None:
                    record(txn)
                tell("rewrapped")
        except BaseException:
            discard_staged_master(paths, keys)
            raise
        tell("committed")
        rotated = promote_master(paths, keys, new)
        tell("promoted")
        _checkpoint(conn, paths.db)
    finally:
        conn.close()
    log.info("master key rotated: %s rewrapped", counts)
    return rotated, counts


def finish_rotation(paths: Paths, keys: Keys) -> Keys:
    """Complete or undo a rotation a crash interrupted; returns the keys to use.

    A staged key that opens the store is promoted (the rewrap committed); one
    that does not is discarded (it never did). Without a staged key this
    reads nothing from the store.

    Raises:
        KeyStorageError: the staged key cannot be read, promoted or removed.
        StoreError: the store cannot be read.
    """
    staged = staged_master(paths, keys)
    if staged is None:
        return keys
    conn = connect(paths.db)
    try:
        with translate_errors(paths.db):
            committed = master_opens(conn, staged)
    finally:
        conn.close()
    if committed:
        log.warning("finishing a master key rotation that was interrupted after its commit")
        return promote_master(paths, keys, staged)
    log.warning("undoing a master key rotation that was interrupted before its commit")
    discard_staged_master(paths, keys)
    return keys
