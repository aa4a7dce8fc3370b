"""The collector's own state in DATA/collector.db: tokens, devices, witnessed heads, bundles.

Enrolment tokens are secrets, so only their SHA-256 is stored: a copy of the
database does not let anyone enrol. A token is consumed in the same
transaction that stores the device, so two devices racing with one token
cannot both enrol.

The witnessed head of a device only moves by compare-and-swap from the head a
bundle says it extends (`accept`), so even a caller that skipped the check
cannot make the collector witness a ledger that forks from what it saw. The
same transaction stamps the new head with the next value of one
collector-wide counter (the `witness` table), which the signed head files
carry: a head file with a lower counter than one seen before is an old one
put back (org/heads.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from cleartrace.consent.records import GENESIS, key_fingerprint, rfc3339
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.store.db import transaction, translate_errors

__all__ = [
    "DB_NAME",
    "NO_HEAD",
    "Device",
    "Head",
    "Registry",
    "StoredBundle",
    "TokenRefused",
    "read_devices",
]

#: The registry's file name inside the collector's data directory.
DB_NAME = "collector.db"
SCHEMA_VERSION = 2

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
"""


class TokenRefused(UsageError):
    """The enrolment token is unknown or was used already."""


class Head(NamedTuple):
    """A ledger head: the last record's sequence number and hash."""

    seq: int
    hash: str

    def as_json(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": self.hash}


#: The head of a device that has uploaded nothing yet.
NO_HEAD = Head(0, GENESIS)


@dataclass(frozen=True, slots=True)
class Device:
    """An enrolled device and the ledger head the collector witnessed for it."""

    device: str
    public_key: bytes
    subject: str
    enrolled_at: str
    head: Head
    head_bundle: str | None
    head_time: str | None
    #: The witness counter stamped on the head when it was accepted (0: none yet).
    head_counter: int = 0

    @property
    def hex(self) -> str:
        """The fingerprint without its "sha256:" prefix, as URLs and file names carry it."""
        return self.device.removeprefix("sha256:")

    def as_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "subject": self.subject,
            "enrolled_at": self.enrolled_at,
            "head": self.head.as_json(),
            "head_bundle": self.head_bundle,
            "head_time": self.head_time,
            "head_counter": self.head_counter,
        }


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """A bundle the collector accepted."""

    name: str
    device: str
    size: int
    received: str


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _now() -> str:
    return rfc3339(datetime.now(UTC))


class Registry:
    """Tokens, devices, heads and accepted bundle names in one SQLite file.

    Safe to share between threads: writes go through one connection under a
    lock; reads use a connection per thread, so in WAL mode they never wait
    for a commit's fsync. Every call is short; the collector runs them off
    its event loop.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False

    @classmethod
    def open(cls, data: Path) -> Registry:
        """Open DATA/collector.db, creating DATA (0700) and the database (0600) if absent.

        Raises:
            UsageError: DATA cannot be created.
            StoreCorrupt: the file is not a usable SQLite database.
            StoreError: any other database failure.
        """
        try:
            data.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the collector's data directory {data}: {exc.strerror}; "
                "choose a directory you can write to"
            ) from exc
        path = data / DB_NAME
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        with translate_errors(path):
            conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                _secure_delete(conn)
                # FULL: an acknowledged head must survive a power cut, or the device's
                # next bundle (built on that head) would be refused for good.
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                with transaction(conn, path):
                    _upgrade(conn)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                conn.close()
                raise
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()
            for reader in self._readers:
                reader.close()
            self._readers.clear()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._conn, self._path) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # Callers fetch all rows: a statement stepped to its end closes its read
        # transaction at once, so the next read on this thread sees the latest commit.
        with translate_errors(self._path):
            reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
            if reader is None:
                with self._lock:
                    if self._closed:
                        raise sqlite3.ProgrammingError("the registry is closed")
                    # check_same_thread=False only so close() may close it from another thread.
                    reader = sqlite3.connect(
                        self._path, timeout=10.0, isolation_level=None, check_same_thread=False
                    )
                    _secure_delete(reader)
                    self._readers.append(reader)
                self._local.reader = reader
            yield reader

    # -- tokens and enrolment ---------------------------------------------------------

    def issue_tokens(self, count: int = 1) -> list[str]:
        """Create `count` single-use enrolment tokens; returns them (only their hashes are kept).

        Raises:
            UsageError: `count` is not between 1 and 10000.
            StoreError: the database cannot be written.
        """
        if not 1 <= count <= 10_000:
            raise UsageError("the token count must be between 1 and 10000")
        # The prefix names what it is, and keeps a token from ever starting with
        # "-" (base64url can), which a command line would take for an option.
        tokens = ["ct_" + secrets.token_urlsafe(32) for _ in range(count)]
        now = _now()
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO tokens(hash, created) VALUES (?, ?)",
                [(_token_hash(t).hex(), now) for t in tokens],
            )
        return tokens

    def enroll(self, token: str, public_key: bytes) -> Device:
        """Consume `token` and enrol the device with `public_key`, in one transaction.

        A device that enrols again with the same key keeps its subject id (and
        its witnessed head); the token is consumed all the same.

        Raises:
            TokenRefused: the token is unknown or already used.
            StoreError: the database cannot be written.
        """
        wanted = _token_hash(token)
        device = key_fingerprint(public_key)
        now = _now()
        with self._tx() as conn:
            # Compare against every unused hash with a constant-time compare and no
            # early exit, so response timing says nothing about how close a guess came.
            match: str | None = None
            for (stored,) in conn.execute("SELECT hash FROM tokens WHERE used IS NULL"):
                if hmac.compare_digest(bytes.fromhex(stored), wanted):
                    match = stored
            if match is None:
                raise TokenRefused(
                    "the enrolment token is unknown or was used already; "
                    "ask the organisation for a new one ('cleartrace org token')"
                )
            conn.execute("UPDATE tokens SET used = ? WHERE hash = ?", (now, match))
            conn.execute(
                "INSERT OR IGNORE INTO devices(device, public_key, subject, enrolled_at, "
                "head_seq, head_hash) VALUES (?, ?, ?, ?, 0, ?)",
                (device, public_key, secrets.token_hex(16), now, GENESIS),
            )
            row = conn.execute(_DEVICE_SELECT + " WHERE device = ?", (device,)).fetchone()
        return _device(row)

    # -- devices and heads ------------------------------------------------------------

    def device(self, device: str) -> Device | None:
        """The enrolled device with fingerprint `device` ("sha256:<hex>"), or None.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute(_DEVICE_SELECT + " WHERE device = ?", (device,)).fetchall()
        return _device(rows[0]) if rows else None

    def devices(self) -> list[Device]:
        """Every enrolled device, in enrolment order.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute(_DEVICE_SELECT + " ORDER BY enrolled_at, device").fetchall()
        return [_device(r) for r in rows]

    def stored(self, name: str) -> StoredBundle | None:
        """The accepted bundle called `name`, or None.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, device, size, received FROM bundles WHERE name = ?", (name,)
            ).fetchall()
        return StoredBundle(*rows[0]) if rows else None

    def bundle_count(self) -> int:
        """How many bundles were accepted.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            ((n,),) = conn.execute("SELECT count(*) FROM bundles").fetchall()
        return int(n)

    def accept(
        self, *, name: str, device: str, size: int, base: Head, head: Head, when: str
    ) -> Device:
        """Record bundle `name` and move the device's witnessed head from `base` to `head`,
        stamped with the next witness counter; returns the device as it is now.

        Raises:
            LedgerBroken: the device's witnessed head is no longer `base`
                (compare-and-swap lost: a rewritten ledger, or a concurrent upload).
            StoreError: the database cannot be written (nothing changed).
        """
        with self._tx() as conn:
            moved = conn.execute(
                "UPDATE devices SET head_seq = ?, head_hash = ?, head_bundle = ?, head_time = ? "
                "WHERE device = ? AND head_seq = ? AND head_hash = ?",
                (head.seq, head.hash, name, when, device, base.seq, base.hash),
            ).rowcount
            if moved != 1:
                raise LedgerBroken(
                    base.seq,
                    "the bundle's ledger does not extend the head the collector witnessed",
                    "head-mismatch",
                )
            # UPDATE, then SELECT in the same transaction: RETURNING needs SQLite 3.35.
            conn.execute("UPDATE witness SET counter = counter + 1")
            ((counter,),) = conn.execute("SELECT counter FROM witness").fetchall()
            conn.execute("UPDATE devices SET head_counter = ? WHERE device = ?", (counter, device))
            conn.execute(
                "INSERT INTO bundles(name, device, size, received) VALUES (?, ?, ?, ?)",
                (name, device, size, when),
            )
            row = conn.execute(_DEVICE_SELECT + " WHERE device = ?", (device,)).fetchone()
        return _device(row)


def _secure_delete(conn: sqlite3.Connection) -> None:
    """Zero what a connection deletes or overwrites, so the file keeps no freed rows.

    The pragma is per connection, so every connection sets it: token hashes and
    device rows that are removed or rewritten do not linger in free pages.
    """
    conn.execute("PRAGMA secure_delete=ON")


_DEVICE_SELECT = (
    "SELECT device, public_key, subject, enrolled_at, head_seq, head_hash, head_bundle, "
    "head_time, head_counter FROM devices"
)


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


def read_devices(data: Path) -> dict[str, Device]:
    """The devices of the registry in `data`, by fingerprint, without changing it.

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
    collector's user then.

    Raises:
        UsageError: no registry there, or one the collector has not upgraded yet.
        StoreError: the database cannot be read.
    """
    path = data / DB_NAME
    if not path.is_file():
        raise UsageError(f"{data} holds no collector registry ({DB_NAME}); give 'org serve --data'")
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
            if version < SCHEMA_VERSION:
                raise UsageError(
                    f"{path} predates witness counters; start the collector once to upgrade it"
                )
            rows = conn.execute(_DEVICE_SELECT).fetchall()
        finally:
            conn.close()
    return {device.device: device for device in map(_device, rows)}


def _device(row: tuple[object, ...]) -> Device:
    device, public_key, subject, enrolled_at, seq, hash_, bundle, when, counter = row
    assert isinstance(public_key, bytes)
    assert isinstance(seq, int)
    assert isinstance(counter, int)
    return Device(
        device=str(device),
        public_key=public_key,
        subject=str(subject),
        enrolled_at=str(enrolled_at),
        head=Head(seq, str(hash_)),
        head_bundle=None if bundle is None else str(bundle),
        head_time=None if when is None else str(when),
        head_counter=counter,
    )
