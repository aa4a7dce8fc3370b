"""The registry's SQLite file, DATA/collector.db: its schema, its upgrade from
older versions, how the collector opens it, and how ingest reads it without
changing it. A file whose state `org move-state` moved to PostgreSQL is
marked so (its user_version `MOVED_VERSION`, in the move's last SQLite
transaction) before it is removed: a command that opened it earlier and
waits for its lock finds the mark there once it gets in, and refuses."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from cleartrace.errors import UsageError
from cleartrace.org.devices import DEVICE_SELECT, Device, device_of_row
from cleartrace.org.state import (
    is_shared,
    read_shared,
    redacted,
    refuse_fleet_data,
    scrubbed,
    shared_url,
)
from cleartrace.store.db import transaction, translate_errors

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "MOVED_VERSION",
    "SCHEMA_VERSION",
    "connect_existing",
    "last_org_record",
    "make_data_dir",
    "mark_moved",
    "moved_to",
    "open_db",
    "read_devices",
    "read_org_ledger",
    "refuse_if_moved",
    "refuse_moved",
    "secure_delete",
]

#: The registry's file name inside the collector's data directory.
DB_NAME = "collector.db"
#: DATA/collector.lock: held by the one collector serving DATA/collector.db.
LOCK_NAME = "collector.lock"
SCHEMA_VERSION = 2
#: The user_version of a collector.db whose state was moved to PostgreSQL.
MOVED_VERSION = -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    hash    TEXT PRIMARY KEY,      -- hex SHA-256 of the token; the token itself is never kept
    created TEXT NOT NULL,
    used    TEXT                   -- when it enrolled a device; NULL while still valid
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    device      TEXT PRIMARY KEY,  -- "sha256:<hex>" of the raw Ed25519 public key
    public_key  BLOB NOT NULL,     -- raw 32 bytes
    subject     TEXT NOT NULL,     -- pseudonymous subject id (32 hex), chosen here
    enrolled_at TEXT NOT NULL,
    head_seq    INTEGER NOT NULL DEFAULT 0,
    head_hash   TEXT NOT NULL,     -- witnessed ledger head; seq 0 and 64 zeros for none
    head_bundle TEXT,              -- the bundle that brought that head
    head_time   TEXT,
    head_counter INTEGER NOT NULL DEFAULT 0  -- witness counter when that head was accepted
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS witness (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    counter INTEGER NOT NULL       -- bumped with every accepted head; never goes down
);
CREATE TABLE IF NOT EXISTS bundles (
    name     TEXT PRIMARY KEY,     -- hex SHA-256 of the bundle's bytes
    device   TEXT NOT NULL REFERENCES devices(device),
    size     INTEGER NOT NULL,
    received TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS org_ledger (
    seq    INTEGER PRIMARY KEY,    -- the collector's own acts (org/org_ledger.py), 1, 2, ...
    record TEXT NOT NULL           -- the signed record, canonical JSON: ids, counts, times
);
"""


def make_data_dir(data: Path) -> None:
    """Create the collector's DATA (0700) if absent, whichever state it keeps.

    Raises:
        UsageError: DATA cannot be created.
    """
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the collector's data directory {data}: {exc.strerror}; "
            "choose a directory you can write to"
        ) from exc


def open_db(data: Path, *, moving: bool = False) -> tuple[sqlite3.Connection, Path]:
    """Open DATA/collector.db for the collector, creating DATA (0700) and the
    database (0600) if absent and upgrading its schema; returns it and its path.
    A file whose state was moved is refused, unless `moving` (a move run again).

    Raises:
        UsageError: DATA cannot be created; DATA is a fleet process's, or its
            state was moved (never a new file beside its state.json).
        StoreCorrupt: the file is not a usable SQLite database.
        StoreError: any other database failure.
    """
    make_data_dir(data)
    path = data / DB_NAME
    if not path.exists():
        refuse_fleet_data(data, "--state")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    with translate_errors(path):
        conn = connect_existing(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            secure_delete(conn)
            # FULL: an acknowledged head must survive a power cut, or the device's
            # next bundle (built on that head) would be refused for good.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            with transaction(conn, path):
                # Checked and set in one transaction: a move marking the file
                # meanwhile is never overwritten.
                ((version,),) = conn.execute("PRAGMA user_version").fetchall()
                if version != MOVED_VERSION:
                    _upgrade(conn)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                elif not moving:
                    raise refuse_moved(data, conn)
        except BaseException:
            conn.close()
            raise
    return conn, path


def connect_existing(path: Path) -> sqlite3.Connection:
    """A connection to the collector.db that is at `path`, never a new one made
    there (a file removed meanwhile, its state moved, is refused naming it).

    Raises:
        UsageError: the file is gone.
        sqlite3.Error: it cannot be opened.
    """
    try:
        return sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw",
            uri=True,
            timeout=10.0,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.OperationalError:
        if not path.exists():
            raise refuse_moved(path.parent) from None
        raise


def refuse_moved(data: Path, conn: sqlite3.Connection | None = None) -> UsageError:
    """The refusal of DATA/collector.db once its state was moved, naming the state
    the file's mark records (`conn` on it), else the one DATA/state.json names."""
    url = None
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            rows = conn.execute("SELECT state FROM moved").fetchall()
            url = str(rows[0][0]) if rows else None
    if url is None:
        with contextlib.suppress(UsageError):
            url = shared_url(data)
    give = (
        "run 'org move-state' again to finish the move"
        if url is None
        else f"give --state {redacted(url)!r}"
    )
    return UsageError(f"the collector's state in {data / DB_NAME} was moved to PostgreSQL; {give}")


def moved_to(conn: sqlite3.Connection) -> str | None:
    """The state (its URL without a password) a marked file's mark records, or None
    for a file whose state was not moved."""
    ((version,),) = conn.execute("PRAGMA user_version").fetchall()
    if version != MOVED_VERSION:
        return None
    rows = conn.execute("SELECT state FROM moved").fetchall()
    return str(rows[0][0]) if rows else ""


def mark_moved(conn: sqlite3.Connection, state: str) -> None:
    """Mark the file as moved to `state` (a URL without a password), inside the
    caller's transaction: every later open and write refuses it, naming `state`."""
    conn.execute("CREATE TABLE IF NOT EXISTS moved (state TEXT NOT NULL)")
    conn.execute("DELETE FROM moved")
    conn.execute("INSERT INTO moved(state) VALUES (?)", (state,))
    conn.execute(f"PRAGMA user_version={MOVED_VERSION}")


def refuse_if_moved(conn: sqlite3.Connection, data: Path) -> None:
    """Refuse, inside a transaction on DATA/collector.db, once its state was moved.

    Raises:
        UsageError: it was.
    """
    ((version,),) = conn.execute("PRAGMA user_version").fetchall()
    if version == MOVED_VERSION:
        raise refuse_moved(data, conn)


def secure_delete(conn: sqlite3.Connection) -> None:
    """Zero what a connection deletes or overwrites, so the file keeps no freed rows.

    The pragma is per connection, so every connection sets it: token hashes and
    device rows that are removed or rewritten do not linger in free pages.
    """
    conn.execute("PRAGMA secure_delete=ON")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a registry of schema 1 (no witness counter) up to date, in one transaction.

    Heads accepted before counters existed are numbered in the order they were
    accepted, so the head files rewritten at start-up carry counters too.
    """
    conn.execute("INSERT OR IGNORE INTO witness(id, counter) VALUES (1, 0)")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(devices)")}
    if "head_counter" in columns:
        return
    conn.execute("ALTER TABLE devices ADD COLUMN head_counter INTEGER NOT NULL DEFAULT 0")
    heads = conn.execute(
        "SELECT device FROM devices WHERE head_bundle IS NOT NULL ORDER BY head_time, device"
    ).fetchall()
    for counter, (device,) in enumerate(heads, start=1):
        conn.execute("UPDATE devices SET head_counter = ? WHERE device = ?", (counter, device))
    conn.execute("UPDATE witness SET counter = ?", (len(heads),))


def read_devices(source: Path | str) -> dict[str, Device]:
    """The devices of the collector's registry, by fingerprint, without changing it:
    `source` is its data directory (DATA/collector.db) or its PostgreSQL state
    (`postgresql://…`, read in a read-only transaction).

    For ingest, which takes the collector's registry as the authority on
    witnessed heads and must not change it. SQLite opening a WAL database,
    even read-only, creates its -wal and -shm files when they are absent, and
    files created by another user (root, say) could keep the collector from
    opening its own database. So with no -wal file, which means no connection
    is open (the last one to close removes it), the database is read as
    immutable, creating nothing; if a -wal file appears or the database
    changes meanwhile, it is read again the ordinary way. With a -wal file
    (the collector running) the ordinary read-only open creates nothing
    either, but it needs write access to the -shm file: run ingest as the
    collector's user then. The data directory of a fleet process (DATA/state.json,
    no collector.db) is refused, naming the state to give instead: the file is
    not followed (`refuse_fleet_data`).

    Raises:
        UsageError: no registry there, or one the collector has not upgraded yet.
        StoreError: the database cannot be read.
    """
    if isinstance(source, str):
        shared = read_shared(_shared_source(source), DEVICE_SELECT)
        return {device.device: device for device in map(device_of_row, shared)}
    data = source
    path = data / DB_NAME
    if not path.is_file():
        refuse_fleet_data(data, "--heads-from")
        # `data` may be a libpq keyword string given for a state: never echo its password.
        shown = scrubbed(str(data), str(data))
        raise UsageError(
            f"{shown} holds no collector registry ({DB_NAME}); give 'org serve --data', or a "
            "fleet's state as postgresql://USER@HOST/DB"
        )
    wal = path.with_name(DB_NAME + "-wal")
    if not wal.exists():
        before = path.stat()
        rows = _read_devices(path, "immutable=1")
        after = path.stat()
        if not wal.exists() and (before.st_mtime_ns, before.st_size) == (
            after.st_mtime_ns,
            after.st_size,
        ):
            return rows
    return _read_devices(path, "mode=ro")


def _shared_source(url: str) -> str:
    """`url`, a collector's PostgreSQL state as ingest and the audit are given it.

    Raises:
        UsageError: not a postgresql:// URL.
    """
    if not is_shared(url):
        raise UsageError(
            f"{redacted(url)!r} is not a collector's state; give its data directory or its "
            "postgresql://USER@HOST/DATABASE state"
        )
    return url


def _read_devices(path: Path, how: str) -> dict[str, Device]:
    """Read every device from `path` opened with the URI parameter `how`.

    Raises:
        UsageError: a registry from before witness counters.
        StoreError: the database cannot be read.
    """
    with translate_errors(path):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{how}", uri=True, timeout=10.0)
        try:
            ((version,),) = conn.execute("PRAGMA user_version").fetchall()
            if version == MOVED_VERSION:
                raise refuse_moved(path.parent, conn)
            if version < SCHEMA_VERSION:
                raise UsageError(
                    f"{path} predates witness counters; start the collector once to upgrade it"
                )
            rows = conn.execute(DEVICE_SELECT).fetchall()
        finally:
            conn.close()
    return {device.device: device for device in map(device_of_row, rows)}


def last_org_record(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The last record of the collector's org ledger, inside the caller's transaction."""
    rows = conn.execute("SELECT record FROM org_ledger ORDER BY seq DESC LIMIT 1").fetchall()
    return None if not rows else dict(json.loads(rows[0][0]))


def read_org_ledger(source: Path | str) -> list[dict[str, Any]] | None:
    """Every record of the collector's org ledger, in order, without changing the
    registry: `source` is its data directory (opened as `read_devices` opens it) or
    its PostgreSQL state; None when a data directory holds no registry. A row that
    is not JSON is given as an empty record, which the chain walk then refuses at
    its place.

    Raises:
        UsageError: `source` is a fleet process's data directory (`refuse_fleet_data`).
        StoreError: the database cannot be read.
    """
    if isinstance(source, str):
        shared = read_shared(_shared_source(source), "SELECT record FROM org_ledger ORDER BY seq")
        return [_record(text) for (text,) in shared]
    data = source
    path = data / DB_NAME
    if not path.is_file():
        refuse_fleet_data(data, "--heads-from")
        return None
    how = "mode=ro" if path.with_name(DB_NAME + "-wal").exists() else "immutable=1"
    with translate_errors(path):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{how}", uri=True, timeout=10.0)
        try:
            refuse_if_moved(conn, data)
            tables = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'org_ledger'"
            ).fetchall()
            rows = (
                conn.execute("SELECT record FROM org_ledger ORDER BY seq").fetchall()
                if tables
                else []
            )
        finally:
            conn.close()
    return [_record(text) for (text,) in rows]


def _record(text: object) -> dict[str, Any]:
    """One org-ledger row as a record: a row that is not a JSON object (a damaged or
    tampered registry) is an empty one, which the chain walk refuses at its place;
    alike on SQLite and PostgreSQL."""
    try:
        obj = json.loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}
