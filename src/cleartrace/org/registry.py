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

The file itself (schema, upgrades, the read-only view ingest takes) is
org/registry_db.py; the device and bundle records are org/devices.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.errors import LedgerBroken, TokenRefused, UsageError
from cleartrace.formats import canonical, key_fingerprint, rfc3339
from cleartrace.org.devices import DEVICE_SELECT, Device, Head, StoredBundle, device_of_row
from cleartrace.org.limits import Rate, TokenBucket
from cleartrace.org.org_ledger import next_record
from cleartrace.org.registry_db import (
    connect_existing,
    last_org_record,
    open_db,
    refuse_if_moved,
    secure_delete,
)
from cleartrace.org.witness import load_or_create
from cleartrace.store.db import transaction, translate_errors

__all__ = ["Registry", "new_tokens", "token_hash", "token_refused", "utc_stamp"]


def token_hash(token: str) -> bytes:
    """What either state keeps of an enrolment token (hex of it): its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_tokens(count: int) -> list[str]:
    """`count` new single-use enrolment tokens, for either state to keep the hashes of.

    Raises:
        UsageError: `count` is not between 1 and 10000.
    """
    if not 1 <= count <= 10_000:
        raise UsageError("the token count must be between 1 and 10000")
    # The prefix names what it is, and keeps a token from ever starting with
    # "-" (base64url can), which a command line would take for an option.
    return ["ct_" + secrets.token_urlsafe(32) for _ in range(count)]


def token_refused() -> TokenRefused:
    """The one refusal for a token that is unknown or used, whichever it was."""
    return TokenRefused(
        "the enrolment token is unknown or was used already; "
        "ask the organisation for a new one ('cleartrace org token')"
    )


def utc_stamp() -> str:
    """The time either state stamps its rows with (RFC 3339, UTC, milliseconds)."""
    return rfc3339(datetime.now(UTC))


class Registry:
    """Tokens, devices, heads and accepted bundle names in one SQLite file.

    Safe to share between threads: writes go through one connection under a
    lock; reads use a connection per thread, so in WAL mode they never wait
    for a commit's fsync. Every call is short; the collector runs them off
    its event loop. One process serves the file (DATA/collector.lock), so the
    per-device head locks are in memory.
    """

    shared = False

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._witness: Ed25519PrivateKey | None = None
        self._head_locks: dict[str, threading.Lock] = {}
        self._buckets: dict[str, TokenBucket] = {}

    @classmethod
    def open(cls, data: Path) -> Registry:
        """Open DATA/collector.db, creating DATA (0700) and the database (0600) if absent.

        Raises:
            UsageError: DATA cannot be created.
            StoreCorrupt: the file is not a usable SQLite database.
            StoreError: any other database failure.
        """
        return cls(*open_db(data))

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
            refuse_if_moved(conn, self._path.parent)  # moved while this process waited
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
                    # A file removed meanwhile (its state moved) is refused, not made anew.
                    reader = connect_existing(self._path)
                    secure_delete(reader)
                    self._readers.append(reader)
                self._local.reader = reader
            yield reader

    def _signer(self) -> Ed25519PrivateKey:
        return self.witness_key()

    def witness_key(self) -> Ed25519PrivateKey:
        """The witness key beside the file (DATA/witness.key, created on first use),
        which signs the org ledger and the head files (loaded once)."""
        if self._witness is None:
            self._witness = load_or_create(self._path.parent)
        return self._witness

    @staticmethod
    def _log(conn: sqlite3.Connection, key: Ed25519PrivateKey, kind: str, **fields: Any) -> None:
        """Append the act to the org ledger inside the act's own transaction:
        both happen or neither does (org/org_ledger.py)."""
        record = next_record(last_org_record(conn), kind, fields, key)
        conn.execute(
            "INSERT INTO org_ledger(seq, record) VALUES (?, ?)",
            (record["seq"], canonical(record).decode("utf-8")),
        )

    def org_ledger(self) -> list[dict[str, Any]]:
        """The collector's org ledger, every record in order.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute("SELECT record FROM org_ledger ORDER BY seq").fetchall()
        return [dict(json.loads(text)) for (text,) in rows]

    # -- tokens and enrolment ---------------------------------------------------------

    def issue_tokens(self, count: int = 1) -> list[str]:
        """Create `count` single-use enrolment tokens; returns them (only their hashes are kept).

        Raises:
            UsageError: `count` is not between 1 and 10000.
            StoreError: the database cannot be written.
        """
        tokens = new_tokens(count)
        when = utc_stamp()
        key = self._signer()
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO tokens(hash, created) VALUES (?, ?)",
                [(token_hash(t).hex(), when) for t in tokens],
            )
            self._log(conn, key, "tokens.issued", tokens=count)
        return tokens

    def enroll(self, token: str, public_key: bytes) -> Device:
        """Consume `token` and enrol the device with `public_key`, in one transaction.

        A device that enrols again with the same key keeps its subject id (and
        its witnessed head); the token is consumed all the same.

        Raises:
            TokenRefused: the token is unknown or already used.
            StoreError: the database cannot be written.
        """
        wanted = token_hash(token)
        device = key_fingerprint(public_key)
        now = utc_stamp()
        key = self._signer()
        with self._tx() as conn:
            # Compare against every unused hash with a constant-time compare and no
            # early exit, so response timing says nothing about how close a guess came.
            match: str | None = None
            for (stored,) in conn.execute("SELECT hash FROM tokens WHERE used IS NULL"):
                if hmac.compare_digest(bytes.fromhex(stored), wanted):
                    match = stored
            if match is None:
                raise token_refused()
            conn.execute("UPDATE tokens SET used = ? WHERE hash = ?", (now, match))
            conn.execute(
                "INSERT OR IGNORE INTO devices(device, public_key, subject, enrolled_at, "
                "head_seq, head_hash) VALUES (?, ?, ?, ?, 0, ?)",
                (device, public_key, secrets.token_hex(16), now, GENESIS),
            )
            row = conn.execute(DEVICE_SELECT + " WHERE device = ?", (device,)).fetchone()
            found = device_of_row(row)
            self._log(conn, key, "device.admitted", device=device, subject=found.subject)
        return found

    # -- devices and heads ------------------------------------------------------------

    def take(self, bucket: str, rate: Rate) -> float:
        """Take one from token bucket `bucket`: 0 when allowed, else the seconds until
        one would be. In memory, as one process serves the file; the collector counts
        only uploads here ("upload:<device>", bounded by enrolments), and enrolment
        attempts in its own bounded table (org/intake.py)."""
        now = time.monotonic()
        with self._lock:
            found = self._buckets.get(bucket)
            if found is None:
                found = self._buckets[bucket] = TokenBucket(rate, now)
            return found.take(now)

    def head_lock(self, device: str) -> threading.Lock:
        """Held (on a worker thread) while `device`'s head moves and its head file is
        written (dict.setdefault is atomic under the GIL: two threads get the same lock)."""
        return self._head_locks.setdefault(device, threading.Lock())

    def device(self, device: str) -> Device | None:
        """The enrolled device with fingerprint `device` ("sha256:<hex>"), or None.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute(DEVICE_SELECT + " WHERE device = ?", (device,)).fetchall()
        return device_of_row(rows[0]) if rows else None

    def devices(self) -> list[Device]:
        """Every enrolled device, in enrolment order.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._read() as conn:
            rows = conn.execute(DEVICE_SELECT + " ORDER BY enrolled_at, device").fetchall()
        return [device_of_row(r) for r in rows]

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
            row = conn.execute(DEVICE_SELECT + " WHERE device = ?", (device,)).fetchone()
        return device_of_row(row)
