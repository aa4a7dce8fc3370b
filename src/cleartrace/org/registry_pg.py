"""The collector's state in PostgreSQL (`--state postgresql://…`), shared by a fleet.

The same tables as DATA/collector.db (org/registry_db.py), so that any
number of collector processes, on any hosts, serve one fleet. Every act that
must not half-happen or happen twice is one PostgreSQL transaction, and each
is correct under READ COMMITTED because its decisive statement is a
conditional write that PostgreSQL re-checks on the row's newest version:

- consuming a token is `UPDATE tokens … WHERE hash = ? AND used IS NULL
  RETURNING`: of several processes enrolling with one token, exactly one gets
  the row back. (The lookup is by the token's SHA-256, so its timing says
  something about a hash, which says nothing about any token.)
- moving a head is `UPDATE devices … WHERE head_seq = ? AND head_hash = ?`
  (compare-and-swap), stamped with the next value of the sequence
  `witness_counter`. A sequence hands out every value once without holding a
  lock until commit (a counter row would make every upload of the fleet wait
  for the one before it to reach the disk); a value drawn by an upload that
  then failed is skipped. Ingest compares the counters of one device's heads,
  and those are drawn one after another under the device's head lock.
- the org ledger is a hash chain: each act takes `LOCK TABLE org_ledger IN
  SHARE ROW EXCLUSIVE MODE` (which conflicts with itself) before reading the
  last record, so records are chained one after another, never two on one.

The rate limits (a device's uploads, enrolment attempts per network and
overall) are token buckets in rows of their own, refilled from the
server's clock, so a device behind a load balancer gets `--rate` from the
fleet, not from each process, and a token guesser gets `--enroll-rate` once.

The per-device head lock is a PostgreSQL session advisory lock keyed by the
device: held while the head moves and its head file is written, so no
process overwrites a head file with an older head. The server releases it if
the holder's session ends (a restart, a failover, a terminated backend), and
another process may then take it: so the holder's `accept` runs on the very
connection holding the lock, and fails with it, committing nothing. Connections
(org/registry_pg_pool.py: timeouts, a small pool, one retry on a fresh
connection for a pooled one that died idle) are as many as were in use at
once, whichever worker threads come and go.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.errors import LedgerBroken, StoreError, UsageError
from cleartrace.formats import canonical, key_fingerprint
from cleartrace.org.devices import DEVICE_SELECT, Device, Head, StoredBundle, device_of_row
from cleartrace.org.limits import Rate
from cleartrace.org.org_ledger import next_record
from cleartrace.org.registry import new_tokens, token_hash, token_refused, utc_stamp
from cleartrace.org.registry_db import make_data_dir
from cleartrace.org.registry_pg_adopt import adopt
from cleartrace.org.registry_pg_pool import Conn, Pool, connect
from cleartrace.org.registry_pg_schema import SCHEMA, SCHEMA_PRESENT, TAKE
from cleartrace.org.state import remember_url
from cleartrace.org.state_move import StateRows
from cleartrace.org.witness import WITNESS_KEY, WITNESS_PUB, load_or_create

__all__ = ["PgRegistry"]

#: How many takes from rate buckets between two removals of idle buckets.
_PRUNE_EVERY = 1000
#: Advisory lock keys: the schema's creation, and (with a device's 63 bits) its head.
_SCHEMA_LOCK = 0x43_54_53_43_48_45_4D_41  # "CTSCHEMA"


def _device_key(device: str) -> int:
    """A signed 64-bit advisory lock key for `device` (a collision only makes two wait)."""
    return int.from_bytes(
        hashlib.sha256(b"head-lock\0" + device.encode()).digest()[:8], "big", signed=True
    )


class PgRegistry:
    """The collector's state in one PostgreSQL database; see the module's docstring."""

    shared = True

    def __init__(self, data: Path, url: str) -> None:
        self._data = data
        self._pool = Pool(url)
        self._where = self._pool.where
        self._lock = threading.Lock()
        #: Per thread, the connection holding each device's head lock it holds.
        self._held = threading.local()
        self._witness: Ed25519PrivateKey | None = None
        self._takes = 0

    @classmethod
    def open(cls, data: Path, url: str, *, remember: bool = True) -> PgRegistry:
        """Connect, and create the tables if absent (one process at a time): only
        then, so a role with no right to create anything serves existing tables;
        DATA/state.json names the state unless `remember` is False (a move
        writes it once the state is there).

        Raises:
            UsageError: DATA cannot be created.
            StoreError: the database cannot be reached or written.
        """
        make_data_dir(data)
        state = cls(data, url)
        try:
            if not state._read(SCHEMA_PRESENT)[0][0]:
                with state._tx() as conn:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    conn.execute(SCHEMA)
            if remember:
                remember_url(data, url)
        except BaseException:
            state.close()
            raise
        return state

    def close(self) -> None:
        self._pool.close()

    def _tx(self) -> AbstractContextManager[Conn]:
        return self._pool.tx(self._holding())

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        held = self._holding()
        if held is None:
            return self._pool.read(sql.replace("?", "%s"), params)
        with self._pool.errors():
            return held.execute(sql.replace("?", "%s"), params).fetchall()

    def _holding(self) -> Conn | None:
        """The connection of a head lock this thread holds, on which all its statements
        run meanwhile: one connection per thread, and an `accept` under the lock fails
        with the lock's session (a new head is never committed without the lock)."""
        locks = self._locks()
        return next(iter(locks.values())) if locks else None

    def _locks(self) -> dict[str, Conn]:
        """This thread's head locks: device -> the connection holding its lock."""
        locks: dict[str, Conn] | None = getattr(self._held, "locks", None)
        if locks is None:
            locks = self._held.locks = {}
        return locks

    def _signer(self) -> Ed25519PrivateKey:
        return self.witness_key()

    def witness_key(self) -> Ed25519PrivateKey:
        """DATA/witness.key, once it is proven the fleet's: the first process to
        sign records its public half in the database, and a process holding another
        key is refused, before it signs a head file or an org ledger record that
        ingest and the audit would take for forged.

        Raises:
            UsageError: DATA holds another key than the fleet's.
            KeyStorageError: the key cannot be read or created.
        """
        if self._witness is None:
            key = load_or_create(self._data)
            raw = key.public_key().public_bytes_raw()
            with self._tx() as conn:
                conn.execute("UPDATE witness SET public_key = %s WHERE public_key IS NULL", (raw,))
                ((held,),) = conn.execute("SELECT public_key FROM witness").fetchall()
            if bytes(held) != raw:
                raise UsageError(
                    f"{self._data / WITNESS_KEY} is not the witness key of the collectors "
                    f"sharing {self._where} (theirs is {key_fingerprint(bytes(held))}); copy "
                    f"{WITNESS_KEY} and {WITNESS_PUB} from one of their data directories into "
                    f"{self._data}, or give another --state"
                )
            self._witness = key
        return self._witness

    @staticmethod
    def _log(
        conn: psycopg.Connection[Any], key: Ed25519PrivateKey, kind: str, **fields: Any
    ) -> None:
        """Chain the act onto the org ledger inside its transaction, one writer at a time."""
        conn.execute("LOCK TABLE org_ledger IN SHARE ROW EXCLUSIVE MODE")
        rows = conn.execute("SELECT record FROM org_ledger ORDER BY seq DESC LIMIT 1").fetchall()
        last = dict(json.loads(rows[0][0])) if rows else None
        record = next_record(last, kind, fields, key)
        conn.execute(
            "INSERT INTO org_ledger(seq, record) VALUES (%s, %s)",
            (record["seq"], canonical(record).decode("utf-8")),
        )

    def org_ledger(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT record FROM org_ledger ORDER BY seq")
        return [dict(json.loads(text)) for (text,) in rows]

    def adopt(self, rows: StateRows, witness: bytes) -> bool:
        """Take in a state moved from DATA/collector.db, signed by the witness key
        whose public half is `witness` (org/registry_pg_adopt.py): True when
        copied, False when this database already held it all.

        Raises:
            UsageError: the database holds another state or witness key (and is
                left as it was).
            StoreError: it cannot be written.
        """
        with self._tx() as conn:
            return adopt(conn, rows, witness, self._where)

    # -- tokens and enrolment ---------------------------------------------------------

    def issue_tokens(self, count: int = 1) -> list[str]:
        tokens = new_tokens(count)
        now = utc_stamp()
        key = self._signer()
        with self._tx() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO tokens(hash, created) VALUES (%s, %s)",
                    [(token_hash(t).hex(), now) for t in tokens],
                )
            self._log(conn, key, "tokens.issued", tokens=count)
        return tokens

    def enroll(self, token: str, public_key: bytes) -> Device:
        wanted = token_hash(token).hex()
        device = key_fingerprint(public_key)
        now = utc_stamp()
        key = self._signer()
        with self._tx() as conn:
            used = conn.execute(
                "UPDATE tokens SET used = %s WHERE hash = %s AND used IS NULL RETURNING hash",
                (now, wanted),
            ).fetchall()
            if not used:
                raise token_refused()
            conn.execute(
                "INSERT INTO devices(device, public_key, subject, enrolled_at, head_seq, "
                "head_hash) VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT (device) DO NOTHING",
                (device, public_key, secrets.token_hex(16), now, GENESIS),
            )
            row = conn.execute(DEVICE_SELECT + " WHERE device = %s", (device,)).fetchone()
            assert row is not None
            found = device_of_row(row)
            self._log(conn, key, "device.admitted", device=device, subject=found.subject)
        return found

    # -- devices and heads ------------------------------------------------------------

    def device(self, device: str) -> Device | None:
        rows = self._read(DEVICE_SELECT + " WHERE device = ?", (device,))
        return device_of_row(rows[0]) if rows else None

    def devices(self) -> list[Device]:
        return [
            device_of_row(r) for r in self._read(DEVICE_SELECT + " ORDER BY enrolled_at, device")
        ]

    def stored(self, name: str) -> StoredBundle | None:
        rows = self._read(
            "SELECT name, device, size, received FROM bundles WHERE name = ?", (name,)
        )
        return StoredBundle(*rows[0]) if rows else None

    def bundle_count(self) -> int:
        ((n,),) = self._read("SELECT count(*) FROM bundles")
        return int(n)

    def accept(
        self, *, name: str, device: str, size: int, base: Head, head: Head, when: str
    ) -> Device:
        """On the connection holding `device`'s head lock when this thread holds it
        (`_holding`): if that lock's session ended (and another process may now move
        the head), the transaction fails with it, and nothing is committed."""
        with self._tx() as conn:
            moved = conn.execute(
                "UPDATE devices SET head_seq = %s, head_hash = %s, head_bundle = %s, "
                "head_time = %s WHERE device = %s AND head_seq = %s AND head_hash = %s "
                "RETURNING device",
                (head.seq, head.hash, name, when, device, base.seq, base.hash),
            ).fetchall()
            if len(moved) != 1:
                raise _head_moved(base)
            ((counter,),) = conn.execute("SELECT nextval('witness_counter')").fetchall()
            conn.execute(
                "UPDATE devices SET head_counter = %s WHERE device = %s", (counter, device)
            )
            conn.execute(
                "INSERT INTO bundles(name, device, size, received) VALUES (%s, %s, %s, %s)",
                (name, device, size, when),
            )
            row = conn.execute(DEVICE_SELECT + " WHERE device = %s", (device,)).fetchone()
        assert row is not None
        return device_of_row(row)

    def take(self, bucket: str, rate: Rate) -> float:
        """One statement on the bucket's row (see `registry_pg_schema.TAKE`); every
        `_PRUNE_EVERY` takes, rows idle for their whole period (full again: the same
        as no row) are removed, so enrolment attempts from many networks leave no
        lasting table behind."""
        per_second = rate.count / rate.period
        params = {
            "key": bucket,
            "capacity": float(rate.count),
            "per_second": per_second,
            "period": rate.period,
        }
        with self._tx() as conn:
            row = conn.execute(TAKE, params).fetchone()
        with self._lock:
            self._takes += 1
            prune = self._takes % _PRUNE_EVERY == 0
        if prune:
            with self._tx() as conn:
                conn.execute(
                    "DELETE FROM rate_buckets "
                    "WHERE updated + period < extract(epoch FROM clock_timestamp())"
                )
        assert row is not None
        allowed, tokens = row
        return 0.0 if allowed else (1.0 - float(tokens)) / per_second

    @contextmanager
    def head_lock(self, device: str) -> Iterator[None]:
        """A session advisory lock keyed by the device, on a connection of its own
        for as long as it is held; this thread's statements in the block run on it.

        Raises:
            StoreError: the lock cannot be taken (its wait is bounded by the
                statement timeout).
        """
        key = _device_key(device)
        locks = self._locks()
        if locks:
            raise StoreError("a thread takes one device's head lock at a time")
        with self._pool.errors():
            conn, _ = self._pool.started(lambda c: c.execute("SELECT pg_advisory_lock(%s)", (key,)))
        locks[device] = conn
        try:
            yield
        finally:
            del locks[device]
            # A connection that broke meanwhile took its locks with it.
            if not conn.broken:
                with suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            self._pool.give(conn)


def _head_moved(base: Head) -> LedgerBroken:
    return LedgerBroken(
        base.seq,
        "the bundle's ledger does not extend the head the collector witnessed",
        "head-mismatch",
    )


def read_shared(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one read-only query on the state at `url`, for ingest and the
    audit (org/registry_db.py), which must not change the collector's state.

    Raises:
        StoreError: the database cannot be reached or read.
    """
    pool = Pool(url)
    with pool.errors(), connect(url, autocommit=False) as conn:
        conn.read_only = True
        return conn.execute(sql).fetchall()
