"""Moving a collector's state from DATA/collector.db into PostgreSQL: the way
from one collector process to a fleet without enrolling any device again.

Everything the file holds goes across in one PostgreSQL transaction, as it
is: token hashes (used or not), devices with their subjects and witnessed
heads, the bundle index, the org ledger's signed records, and the witness
counter (the sequence continues above it, so every later head's counter is
higher than every head file's already written). The org ledger is walked
against DATA/witness.key first, for that key becomes the fleet's: a ledger it
did not sign would be refused by the audit later, so the move is refused now.

The file is read inside a write transaction, held to the end, so no `org
token` can change it meanwhile, and DATA/collector.lock is held, so no
collector serves it. Only after the PostgreSQL commit does DATA become a
fleet process's: a copy of the file is kept as DATA/collector.db.moved (no
command reads it), the file is marked as moved to the state in the
transaction's commit (a command that opened it earlier and waited finds the
mark, and refuses, naming the state: its token or its enrolment is never
written where no one reads it), DATA/state.json names the state, and
collector.db is removed (from then on a command given DATA without `--state`
refuses, and no command makes a new one beside state.json). A marked file
moves again only to the state its mark names. A move killed at any point is
run again: a database that already holds everything the file holds (the
fleet may have gone on since: heads further along the same ledgers, more
records) counts as moved.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.chain import walk
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.faults import fault_point
from cleartrace.org.devices import DEVICE_SELECT
from cleartrace.org.registry_db import (
    DB_NAME,
    LOCK_NAME,
    SCHEMA_VERSION,
    mark_moved,
    moved_to,
    open_db,
)
from cleartrace.org.state import STATE_FILE, redacted, remember_url, shared_url
from cleartrace.org.witness import WITNESS_KEY, load_or_create
from cleartrace.paths import exclusive_lock, fsync_dir
from cleartrace.store.db import translate_errors

__all__ = ["KEPT_NAME", "Moved", "StateRows", "move_state"]

#: The copy of DATA/collector.db kept after a move, read by no command.
KEPT_NAME = DB_NAME + ".moved"


@dataclass(frozen=True)
class StateRows:
    """Every row of a collector's state, as DATA/collector.db holds it."""

    tokens: list[tuple[str, str, str | None]]
    devices: list[tuple[Any, ...]]
    bundles: list[tuple[str, str, int, str]]
    org_ledger: list[tuple[int, str]]
    counter: int


@dataclass(frozen=True)
class Moved:
    """What a move carried: counts only, nothing that names a device or a token."""

    tokens: int
    unused_tokens: int
    devices: int
    bundles: int
    org_ledger: int
    counter: int
    #: False when the database already held it all (a move run again).
    copied: bool
    kept: str
    state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_rows(conn: sqlite3.Connection) -> StateRows:
    """The whole state, inside the caller's transaction."""
    ((counter,),) = conn.execute("SELECT counter FROM witness").fetchall()
    return StateRows(
        tokens=conn.execute("SELECT hash, created, used FROM tokens ORDER BY hash").fetchall(),
        devices=conn.execute(DEVICE_SELECT + " ORDER BY device").fetchall(),
        bundles=conn.execute(
            "SELECT name, device, size, received FROM bundles ORDER BY name"
        ).fetchall(),
        org_ledger=conn.execute("SELECT seq, record FROM org_ledger ORDER BY seq").fetchall(),
        counter=int(counter),
    )


def _check_ledger(data: Path, rows: StateRows) -> Ed25519PrivateKey:
    """DATA/witness.key, the key the fleet will sign with, once the org ledger is
    proven its (created here only for a collector that has signed nothing yet).

    Raises:
        UsageError: the key is missing, or the ledger is not its (or does not chain).
        KeyStorageError: the key file is damaged or refused.
    """
    if rows.org_ledger and not (data / WITNESS_KEY).is_file():
        raise UsageError(
            f"{data / WITNESS_KEY} is missing, and it signed the org ledger in "
            f"{data / DB_NAME}; put it back (the fleet signs with it), nothing was moved"
        )
    key = load_or_create(data)
    try:
        records = [json.loads(text) for _, text in rows.org_ledger]
        walk(records, key.public_key())
    except (LedgerBroken, ValueError) as exc:
        raise UsageError(
            f"the org ledger in {data / DB_NAME} is not one {data / WITNESS_KEY} signed "
            f"({exc}); the fleet would sign with that key, so nothing was moved: put back "
            "the witness key this collector signed with"
        ) from None
    return key


def _keep_copy(data: Path) -> Path:
    """DATA/collector.db.moved: a copy of the file as it was moved (0600, all or
    nothing), taken through SQLite's backup on a connection of its own (the
    caller's holds the write lock, which a backup on it would wait for), so
    what only the WAL held is in it."""
    path, kept = data / DB_NAME, data / KEPT_NAME
    tmp = data / f".{KEPT_NAME}.tmp"
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    with translate_errors(path):
        source = sqlite3.connect(path, timeout=10.0)
        try:
            copy = sqlite3.connect(tmp)
            try:
                source.backup(copy)
                # A move run again copies a file it marked: the copy is unmarked,
                # a registry a collector can serve again if it must.
                copy.execute("DROP TABLE IF EXISTS moved")
                copy.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                copy.commit()
            finally:
                copy.close()
        finally:
            source.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, kept)
    fsync_dir(data)
    return kept


def _remove_file(data: Path) -> None:
    """DATA/collector.db and its WAL files gone, durably: DATA is a fleet's now."""
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (data / name).unlink(missing_ok=True)
    fsync_dir(data)


def move_state(data: Path, url: str) -> Moved:
    """Move DATA/collector.db into the PostgreSQL state at `url` (see the module).

    Raises:
        UsageError: DATA holds no collector.db, a collector serves it, its org
            ledger is not DATA/witness.key's, or the database holds another
            fleet's state (nothing is changed then).
        StoreError: either database cannot be read or written.
    """
    from cleartrace.org.registry_pg import PgRegistry

    path = data / DB_NAME
    if not path.is_file():
        moved = shared_url(data)
        where = "" if moved is None else f"; its {STATE_FILE} names {redacted(moved)!r}: moved"
        raise UsageError(f"{data} holds no {DB_NAME} to move{where}")
    busy = f"a collector is serving {data}; stop it first, then move its state"
    with exclusive_lock(data / LOCK_NAME, busy):
        conn, _ = open_db(data, moving=True)
        try:
            with translate_errors(path):
                # A write transaction: an `org token` run meanwhile (it takes no lock
                # file) waits, and then finds the file marked as moved, and refuses.
                conn.execute("BEGIN IMMEDIATE")
                marked = moved_to(conn)
                rows = _read_rows(conn)
            if marked and marked != redacted(url):
                # Killed after marking: the fleet at `marked` may have gone on from
                # this snapshot; it must not become a second fleet's state elsewhere.
                raise UsageError(
                    f"the collector's state in {path} was moved to {marked!r} by a move that "
                    "did not finish; run 'org move-state' again with --to that state"
                )
            key = _check_ledger(data, rows)
            state = PgRegistry.open(data, url, remember=False)
            try:
                copied = state.adopt(rows, key.public_key().public_bytes_raw())
            finally:
                state.close()
            fault_point("state.copied")
            kept = _keep_copy(data)
            with translate_errors(path):
                mark_moved(conn, redacted(url))
                conn.execute("COMMIT")
        finally:
            conn.close()
        # Marked first: a file left by a kill from here on refuses, naming the state.
        remember_url(data, url)
        _remove_file(data)
    return Moved(
        tokens=len(rows.tokens),
        unused_tokens=sum(used is None for _, _, used in rows.tokens),
        devices=len(rows.devices),
        bundles=len(rows.bundles),
        org_ledger=len(rows.org_ledger),
        counter=rows.counter,
        copied=copied,
        kept=str(kept),
        state=redacted(url),
    )
