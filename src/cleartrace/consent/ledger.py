"""The consent ledger in the store's SQLite file: append-only, hash-chained, signed.

Appends take `BEGIN IMMEDIATE`, so the recorder and a CLI command appending at
the same moment serialise on SQLite's write lock and never fork the chain
(and `seq` is the table's primary key, so a fork could not be stored anyway).
A change that must be ledgered (a deleted session, an exclusion) commits in
the same transaction as its record through `append_in`: either both happen or
neither does.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cleartrace.consent.chain import REWRITTEN
from cleartrace.consent.records import (
    GENESIS,
    LEGACY_KINDS,
    check_signature,
    make_record,
    record_hash,
    sign_record,
)
from cleartrace.errors import LedgerBroken
from cleartrace.formats import b64url, canonical, key_fingerprint
from cleartrace.paths import write_private
from cleartrace.store import ledger_rows
from cleartrace.store.db import transaction

__all__ = ["EXPORT_TYPE", "EXPORT_VERSION", "Ledger"]

log = logging.getLogger(__name__)

EXPORT_TYPE = "cleartrace-ledger"
EXPORT_VERSION = 1


class Ledger:
    """Appends records signed by the device key to the `ledger` table.

    `conn` must come from `cleartrace.store.db.connect(db_path)`, which creates
    the table; the ledger owns it from then on (`close()` closes it).
    """

    def __init__(
        self, conn: sqlite3.Connection, db_path: Path, device_key: Ed25519PrivateKey
    ) -> None:
        self._conn = conn
        self._path = db_path
        self._key = device_key
        self._public = device_key.public_key()
        self._public_raw = self._public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def path(self) -> Path:
        return self._path

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    @property
    def device(self) -> str:
        """The device fingerprint an officer passes as `--expect-device`."""
        return key_fingerprint(self._public_raw)

    def close(self) -> None:
        self._conn.close()

    def append(self, kind: str, *, now: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Append one record in its own `BEGIN IMMEDIATE` transaction; returns it.

        `now` fixes the record time (known-answer tests); default: the clock.

        Raises:
            ValueError: an unknown kind or fields it may not carry (a bug in the caller).
            DiskFull, StoreError: the database could not be written.
        """
        with transaction(self._conn, self._path) as conn:
            return self.append_in(conn, kind, now=now, **fields)

    def append_in(
        self, conn: sqlite3.Connection, kind: str, *, now: datetime | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Append inside the caller's open transaction on `conn`, so a change and
        its record commit (or roll back) together.

        `conn` may be another connection to the same database file, e.g. the
        session store's. SQLite errors propagate to the caller's transaction,
        which translates them.

        Raises:
            ValueError: `conn` has no open transaction, an unknown or legacy
                kind, or fields that kind may not carry (bugs in the caller).
        """
        if not conn.in_transaction:
            raise ValueError("append_in needs an open transaction; use Ledger.append")
        if kind in LEGACY_KINDS:
            raise ValueError(f"'{kind}' records carry a name; write its app.* kind instead")
        seq, prev = self._builds_on(ledger_rows.newest(conn, self._path))
        unsigned = make_record(seq=seq, prev=prev, kind=kind, fields=fields, now=now)
        record = sign_record(unsigned, self._key)
        ledger_rows.append(conn, seq, record_hash(record), canonical(record).decode("utf-8"))
        log.info("ledger record %d: %s", seq, kind)
        return record

    def _builds_on(self, newest: tuple[int, str, str] | None) -> tuple[int, str]:
        """(seq, prev) of the next record, once the newest record is proven ours.

        The next signature covers the newest record's hash, so it would vouch
        for that record whatever it says (consent/chain.py, "One signature per
        run"): someone who can write the store but has no key could rewrite
        it, with its hash, and have it signed over. Checked here, every record a
        device signs on top of was signed by it, so a verifier may check the last
        signature of a linked run only.

        Raises:
            LedgerBroken: the newest record does not hash to its stored hash, is
                not numbered as its row, or its signature is not this device's.
        """
        if newest is None:
            return 1, GENESIS
        seq, stored, text = newest
        refusal = (
            f"the newest record ({seq}) was changed after it was signed; ClearTrace will not "
            "add records on top of it: `cleartrace audit verify` on an export names what changed"
        )
        try:
            record = json.loads(text)
            # Its own number too: an older record of this device, copied in with its
            # hash, is well signed, and the next record would name it as the one before.
            if (
                not isinstance(record, dict)
                or record.get("seq") != seq
                or record_hash(record) != stored
            ):
                raise LedgerBroken(seq, refusal, REWRITTEN)
            check_signature(record, self._public)
        except (ValueError, LedgerBroken) as exc:
            raise LedgerBroken(seq, refusal, getattr(exc, "reason", REWRITTEN)) from None
        return seq + 1, stored

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first. Reading needs no key, so `status` can
        show consent without unlocking anything.

        Raises:
            StoreCorrupt: a record does not decode.
            StoreError: the database cannot be read.
        """
        return ledger_rows.records(self._conn, self._path)

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the newest record, or None for an empty ledger; what a
        collector witnesses and an officer passes as `--head SEQ:HASH`.

        Raises:
            StoreError: the database cannot be read.
        """
        return ledger_rows.head(self._conn, self._path)

    def export_lines(self) -> list[str]:
        """The export as lines without newlines: the header, then every record.

        Raises:
            StoreError: the database cannot be read.
        """
        # One statement reads one snapshot: a concurrent append is either
        # wholly in the export or not at all.
        return [self._export_header(), *ledger_rows.texts(self._conn, self._path)]

    def export_view(self) -> tuple[list[str], list[dict[str, Any]]]:
        """`export_lines` and the records they carry, decoded, from the same
        read: what a viewer shows is what it verifies.

        Raises:
            StoreCorrupt: a record does not decode.
            StoreError: the database cannot be read.
        """
        lines, records = ledger_rows.texts_and_records(self._conn, self._path)
        return [self._export_header(), *lines], records

    def _export_header(self) -> str:
        header = {
            "v": EXPORT_VERSION,
            "type": EXPORT_TYPE,
            "device_public_key": b64url(self._public_raw),
            "device": self.device,
        }
        return canonical(header).decode("utf-8")

    def export(self, out: Path) -> None:
        """Write the export as JSON Lines to `out`, 0600.

        Written to a temporary file next to `out`, synced and renamed, so a
        reader (or a crash) never leaves half a ledger under that name.

        Raises:
            UsageError: `out` cannot be written (missing directory, no permission).
            DiskFull: no room for the file.
            StoreError: the database cannot be read.
        """
        lines = self.export_lines()
        with write_private(out, "ledger export") as fh:
            for line in lines:
                fh.write(line + "\n")
