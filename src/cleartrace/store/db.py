"""The SQLite file behind the store and the ledger: schema, pragmas, error mapping.

Every connection gets WAL, `secure_delete=ON` (deleted rows are zeroed, not
left in free pages) and a busy timeout, because the recorder and CLI commands
write to the same file from different processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cleartrace.errors import DiskFull, StoreCorrupt, StoreError

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_DUE",
    "SCHEMA_VERSION",
    "DamagedRow",
    "checkpoint_due",
    "connect",
    "decode_object",
    "empty_wal",
    "transaction",
    "translate_errors",
]

SCHEMA_VERSION = 1

#: meta key present while the WAL may still hold page images that must not
#: outlive a write (values sealed by a replaced master key): `empty_wal`
#: removes it once it has emptied the WAL, and `Store.open` tries again.
CHECKPOINT_DUE = "checkpoint_due"
_CHECKPOINT_TRIES = 20
#: How long a statement waits for another process's lock (ms).
_BUSY_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id             TEXT PRIMARY KEY,      -- 32 hex digits
    started_ns     INTEGER NOT NULL,      -- wall-clock anchor, UTC ns since the epoch
    anchor_mono_ns INTEGER NOT NULL,      -- time.monotonic_ns() at that anchor
    ended_ns       INTEGER,               -- wall clock, NULL while recording
    state          TEXT NOT NULL,
    wrapped_key    BLOB,                  -- session key sealed by the master key
    counts         TEXT NOT NULL DEFAULT '{}',  -- events per category (no content)
    summary        BLOB,                  -- sealed by the session key: applications seen
    writer_pid     INTEGER                -- the recording process, NULL once closed
);
CREATE TABLE IF NOT EXISTS chunks (
    session_id    TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    n_events      INTEGER NOT NULL,
    first_mono_ns INTEGER NOT NULL,
    last_mono_ns  INTEGER NOT NULL,
    blob          BLOB NOT NULL,
    PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger (
    seq    INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL,                 -- hex SHA-256 of the canonical record
    record TEXT NOT NULL                  -- canonical JSON (RFC 8785), signed
);
CREATE TABLE IF NOT EXISTS redactions (      -- markers: what went, never what it was
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    at_ns      INTEGER NOT NULL,          -- when the redaction was made (wall clock)
    method     TEXT NOT NULL,             -- span, time, match, pii or forget
    from_ns    INTEGER NOT NULL,          -- wall clock of the first removed event
    to_ns      INTEGER NOT NULL,          -- and of the last
    removed    TEXT NOT NULL              -- JSON: events removed per category
);
CREATE TABLE IF NOT EXISTS outbox (          -- bundles built and not yet acknowledged
    name       TEXT PRIMARY KEY,          -- hex SHA-256 of the bundle
    session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,  -- NULL: ledger only
    created_ns INTEGER NOT NULL,
    head_seq   INTEGER NOT NULL,          -- the last ledger record the bundle carries
    bundle     BLOB NOT NULL              -- sealed to the organisation, signed by the device
);
CREATE TABLE IF NOT EXISTS excluded_apps (   -- the person's own exclusions
    tag    TEXT PRIMARY KEY,              -- hex HMAC-SHA256 of the name (the ledger's app_tag)
    sealed BLOB NOT NULL                  -- the name, sealed by the exclusions key
);
CREATE TABLE IF NOT EXISTS wrapped_keys (    -- keys besides session keys (store/named_keys.py)
    name    TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL                 -- sealed by the master key, AAD bound to name
);
-- meta['seals:' || session id]: how many values the session's current key has
-- sealed (chunks and summaries), counted in the same transaction as each write
-- on every path, so the random-nonce cap (store/seals.py) cannot be bypassed.
-- A session older than the counter starts at 2 * its highest index + 1: each
-- index was sealed once, and each append may have sealed a summary too.
CREATE TRIGGER IF NOT EXISTS count_chunk_seals AFTER INSERT ON chunks BEGIN
    INSERT INTO meta(key, value) VALUES (
        'seals:' || NEW.session_id,
        (SELECT 2 * max(idx) + 1 FROM chunks WHERE session_id = NEW.session_id)
    ) ON CONFLICT(key) DO UPDATE SET value = value + 1;
END;
-- A summary written first after the counter arrived counts every index's
-- chunk and summary (2 * (max + 1)) and itself. The first version of this
-- trigger started at 1; it is replaced in place.
DROP TRIGGER IF EXISTS count_summary_seals;
CREATE TRIGGER IF NOT EXISTS count_summary_seals_v2 AFTER UPDATE OF summary ON sessions
WHEN NEW.summary IS NOT NULL BEGIN
    INSERT INTO meta(key, value) VALUES (
        'seals:' || NEW.id,
        coalesce((SELECT 2 * max(idx) + 3 FROM chunks WHERE session_id = NEW.id), 1)
    ) ON CONFLICT(key) DO UPDATE SET value = value + 1;
END;
CREATE TRIGGER IF NOT EXISTS forget_seals AFTER DELETE ON sessions BEGIN
    DELETE FROM meta WHERE key = 'seals:' || OLD.id;
END;
"""


_SQLITE_IOERR = 10
_SQLITE_FULL = 13
# An I/O error with less room than this left is taken for a full disk: SQLite
# grows the -shm file 32 KiB at a time and writes WAL frames of a page each.
_LOW_SPACE = 1 << 20


def _disk_full(path: Path, exc: sqlite3.DatabaseError) -> bool:
    """Whether `exc` comes from a full disk.

    SQLite says "database or disk is full" (SQLITE_FULL) only where its own
    write of the database or WAL fails. A read that must first extend the
    -shm file, a checkpoint or a truncate fails as a plain "disk I/O error"
    (an SQLITE_IOERR_* code) for the same cause; so an I/O error on a file
    system with (next to) no room left is a full disk as well.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL or "full" in str(exc).lower():
        return True
    if primary != _SQLITE_IOERR:
        return False
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    # Root may use the blocks reserved for it; others only what is available.
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize < _LOW_SPACE


class DamagedRow(Exception):
    """A column that does not decode, raised inside `translate_errors`, which
    makes it a `StoreCorrupt` naming the file. `str()` says which row
    ("ledger record 3"), never what it holds."""


def _corrupt(path: Path, what: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"{path} is damaged ({what}); move it aside and restore a backup, "
        "or remove it to start an empty store"
    )


@contextlib.contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Map sqlite3 errors, and columns `decode_object` could not decode, to
    ClearTrace errors that name the file and the fix: every read and write of
    the file goes through here."""
    try:
        yield
    except DamagedRow as exc:
        raise _corrupt(path, str(exc)) from None
    except sqlite3.DatabaseError as exc:
        msg = str(exc).lower()
        if _disk_full(path, exc):
            raise DiskFull(
                f"cannot write to {path}: the disk is full; free some space and try again "
                "(nothing already stored was changed)"
            ) from exc
        if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
            raise _corrupt(path, str(exc)) from exc
        if "locked" in msg or "busy" in msg:
            raise StoreError(f"{path} is locked by another process; try again") from exc
        raise StoreError(f"cannot use {path}: {exc}") from exc


def decode_object(text: object, what: str) -> dict[str, Any]:
    """A column holding a JSON object (a ledger record, a session's counts),
    decoded; called inside `translate_errors`, which turns a damaged one into
    `StoreCorrupt`. `what` names the row, e.g. "ledger record 3".

    Raises:
        DamagedRow: not text, not JSON, or JSON but not an object.
    """
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        value = None
    if not isinstance(value, dict):
        # No `from`: the decoder's message quotes the text it could not read.
        raise DamagedRow(f"{what} does not decode") from None
    return value


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating when absent) the store database with the project's pragmas.

    Raises:
        StoreCorrupt: the file is not a usable SQLite database.
        DiskFull: the schema could not be written.
        StoreError: any other failure.
    """
    existed = path.exists()
    if not existed:
        # Create the file 0600 before SQLite does, so it never exists with umask bits.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    with translate_errors(path):
        conn = sqlite3.connect(
            path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            # Must precede the first table: lets a closed or deleted session give
            # its pages back to the file system (see Store._checkpoint).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )
        except BaseException:
            conn.close()
            raise
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One `BEGIN IMMEDIATE` transaction: committed on success, rolled back on error."""
    with translate_errors(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            # SQLite may already have rolled back itself (e.g. on SQLITE_FULL).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def empty_wal(conn: sqlite3.Connection, path: Path) -> bool:
    """Checkpoint and truncate the WAL, where old page images (a deleted
    chunk, a destroyed or rewrapped key) live on until then; once done,
    clear `CHECKPOINT_DUE`. A reader in another process holding a snapshot
    can hold that up, so retry briefly; False when it still did.

    Raises:
        DiskFull, StoreError: the checkpoint failed.
    """
    with translate_errors(path):
        # A TRUNCATE checkpoint waits the whole busy timeout for each reader;
        # here a short wait per try is enough, and a held reader is reported.
        busy = 1
        conn.execute("PRAGMA busy_timeout=50")
        try:
            for _ in range(_CHECKPOINT_TRIES):
                (busy, _log, _done) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    break
        finally:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        if busy:
            log.warning("%s-wal is still in use by a reader; emptied on a later checkpoint", path)
            return False
        if conn.execute("SELECT 1 FROM meta WHERE key=?", (CHECKPOINT_DUE,)).fetchone():
            conn.execute("DELETE FROM meta WHERE key=?", (CHECKPOINT_DUE,))
    return True


def checkpoint_due(conn: sqlite3.Connection, path: Path) -> bool:
    """Whether a checkpoint that must empty the WAL has not succeeded yet."""
    with translate_errors(path):
        sql = "SELECT 1 FROM meta WHERE key=?"
        return conn.execute(sql, (CHECKPOINT_DUE,)).fetchone() is not None
