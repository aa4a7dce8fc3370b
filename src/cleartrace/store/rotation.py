"""Rotating the master key: everything it seals, rewrapped to a new key at once.

The order makes a crash at any point leave a home that one of the two keys
opens, and `open_keys` (run by every `Home.open`) completes or undoes
what a crash interrupted:

1. the new key is staged beside the old one (`staged_master.stage_master`);
2. one transaction rewraps every value in `wrapped.WRAPPED_BY_MASTER` and
   records it in the ledger (the caller's `record`);
3. the new key replaces the old one (`staged_master.promote_master`);
4. the WAL is checkpointed and truncated, so the old wrapped values do not
   live on in it.

A crash before 2 commits leaves the store sealed by the old key and a staged
key that opens nothing: it is discarded. A crash after leaves a store that
only the staged key opens: it is promoted. Once done, a copy of the old key
unwraps nothing.

Both run holding an exclusive lock on keys/rotation.lock, and so does every
`Home.open` (through `open_keys`), which loads the keys only once no rotation
is under way: a process starting mid-rotation would otherwise take the
staged key for an abandoned one and delete it, and two rotations at once
would stage over each other, leaving the store rewrapped to a key nobody has.

A reader in another process can keep the WAL from being emptied (step 4); the
rewrap transaction leaves `CHECKPOINT_DUE` in meta, which only a checkpoint
that emptied the WAL removes, and `Store.open` tries again while it is there.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt, StoreError, WrongKey
from cleartrace.paths import Paths, exclusive_lock
from cleartrace.store.crypto import seal, unseal
from cleartrace.store.db import CHECKPOINT_DUE, connect, empty_wal, transaction, translate_errors
from cleartrace.store.keys import Keys, load_keys
from cleartrace.store.staged_master import (
    discard_staged_master,
    promote_master,
    stage_master,
    staged_master,
)
from cleartrace.store.wrapped import KEY_CHECK, KEY_CHECK_AAD, WRAPPED_BY_MASTER

__all__ = [
    "ROTATION_WAIT",
    "master_opens",
    "open_keys",
    "require_current_master",
    "rotate_master_key",
]

log = logging.getLogger(__name__)

#: Told each step as it is reached: "staged", "rewrapped" (inside the
#: transaction, before it commits), "committed", "promoted".
Step = Callable[[str], None]
#: Seconds a process waits for a rotation under way in another one to finish.
ROTATION_WAIT = 120.0


@contextlib.contextmanager
def _rotation_lock(paths: Paths) -> Iterator[None]:
    """Hold the home's rotation lock (keys/rotation.lock) for the block.

    Raises:
        UsageError: another process held it for `ROTATION_WAIT` seconds.
    """
    busy = (
        f"a master key rotation for {paths.home} has been under way in another process "
        f"for {ROTATION_WAIT:g} s; try again when it has finished"
    )
    with exclusive_lock(paths.keys_dir / "rotation.lock", busy, wait=ROTATION_WAIT):
        yield


def master_opens(conn: sqlite3.Connection, master: bytes) -> bool:
    """Whether `master` opens the store's key check (False when there is none yet)."""
    row = conn.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
    if row is None:
        return False
    try:
        return unseal(master, bytes(row[0]), KEY_CHECK_AAD) == KEY_CHECK
    except InvalidTag:
        return False


def require_current_master(
    conn: sqlite3.Connection, db: Path, master: bytes, *, missing_ok: bool = False
) -> None:
    """Inside a write transaction: refuse to wrap with a master key that a
    rotation in another process has replaced (the value would open nothing).
    `missing_ok`: a file with no key check yet (no store made in it) passes.

    Raises:
        WrongKey: `master` no longer opens the store.
    """
    if missing_ok and conn.execute("SELECT 1 FROM meta WHERE key='key_check'").fetchone() is None:
        return
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
    with _rotation_lock(paths):
        conn = connect(paths.db)
        try:
            rotated, counts = _rotate(paths, keys, conn, record, tell)
        finally:
            conn.close()
    log.info("master key rotated: %s rewrapped", counts)
    return rotated, counts


def _rotate(
    paths: Paths,
    keys: Keys,
    conn: sqlite3.Connection,
    record: Callable[[sqlite3.Connection], object] | None,
    tell: Step,
) -> tuple[Keys, dict[str, int]]:
    with translate_errors(paths.db):
        if not master_opens(conn, keys.master):
            raise WrongKey(
                f"the master key in {keys.location} does not open {paths.db} (another "
                "rotation may have replaced it meanwhile); nothing was rotated"
            )
    new = secrets.token_bytes(32)
    stage_master(paths, keys, new)
    tell("staged")
    try:
        with transaction(conn, paths.db) as txn:
            counts = _rewrap(txn, paths.db, keys.master, new)
            txn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, 1)", (CHECKPOINT_DUE,))
            if record is not None:
                record(txn)
            tell("rewrapped")
    except BaseException:
        _discard_unless_committed(paths, keys, conn, new)
        raise
    tell("committed")
    rotated = promote_master(paths, keys, new)
    tell("promoted")
    _empty_wal_after(conn, paths.db)
    return rotated, counts


def _empty_wal_after(conn: sqlite3.Connection, db: Path) -> None:
    """Truncate the WAL once the rotation is done; a failure here (a full
    disk) leaves `CHECKPOINT_DUE` set for `Store.open`, not the rotation undone."""
    try:
        empty_wal(conn, db)
    except StoreError as exc:
        log.warning("the WAL of %s is emptied on a later start: %s", db, exc)


def _discard_unless_committed(
    paths: Paths, keys: Keys, conn: sqlite3.Connection, new: bytes
) -> None:
    """After a failure around the rewrap's commit: drop the staged key only if
    the store really is still under the old one. A COMMIT that reported an
    error may have been made; then the staged key is the only one that opens
    the store and is promoted on the next open. If that cannot be told, the
    staged key is kept for `open_keys` to decide."""
    try:
        with translate_errors(paths.db):
            committed = master_opens(conn, new)
    except Exception:
        log.warning("could not tell whether the rotation committed; its key is kept staged")
        return
    if not committed:
        discard_staged_master(paths, keys)


def open_keys(paths: Paths, *, create: bool) -> Keys:
    """This home's keys (see `store.keys.load_keys`), loaded once no rotation
    is under way, with an interrupted one finished or undone first.

    Raises:
        KeyStorageError: keys are missing, or a staged key cannot be handled.
        UsageError: a rotation in another process did not finish in time.
        StoreError: the store cannot be read.
    """
    with _rotation_lock(paths):
        return _finish(paths, load_keys(paths, create=create))


def _finish(paths: Paths, keys: Keys) -> Keys:
    staged = staged_master(paths, keys)
    if staged is None:
        return keys
    conn = connect(paths.db)
    try:
        with translate_errors(paths.db):
            committed = master_opens(conn, staged)
        if committed:
            log.warning("finishing a master key rotation that was interrupted after its commit")
            keys = promote_master(paths, keys, staged)
            _empty_wal_after(conn, paths.db)
            return keys
    finally:
        conn.close()
    log.warning("undoing a master key rotation that was interrupted before its commit")
    discard_staged_master(paths, keys)
    return keys
