"""The consent ledger in the store's SQLite file: append-only, hash-chained, signed.

Appends take `BEGIN IMMEDIATE`, so the recorder and a CLI command appending at
the same moment serialise on SQLite's write lock and never fork the chain.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cleartrace.consent.records import GENESIS, b64url, canonical, make_record, record_hash
from cleartrace.paths import private_file
from cleartrace.store.db import transaction, translate_errors
from cleartrace.store.keys import device_fingerprint

__all__ = ["EXPORT_TYPE", "Ledger", "read_records"]

EXPORT_TYPE = "cleartrace-ledger"


def read_records(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every record in order; reading needs no key."""
    return [json.loads(r) for (r,) in conn.execute("SELECT record FROM ledger ORDER BY seq")]


class Ledger:
    """Appends records signed by the device key."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path, device_key: Ed25519PrivateKey):
        self._conn = conn
        self._path = db_path
        self._key = device_key

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        self._conn.close()

    def append(self, kind: str, *, now: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Append one record in its own transaction; returns it."""
        with transaction(self._conn, self._path) as conn:
            return self.append_in(conn, kind, now=now, **fields)

    def append_in(
        self, conn: sqlite3.Connection, kind: str, *, now: datetime | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Append inside the caller's open transaction (so a change and its record
        commit together)."""
        row = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (1, GENESIS) if row is None else (row[0] + 1, row[1])
        record = make_record(self._key, seq=seq, prev=prev, kind=kind, fields=fields, now=now)
        conn.execute(
            "INSERT INTO ledger(seq, hash, record) VALUES (?, ?, ?)",
            (seq, record_hash(record), canonical(record).decode()),
        )
        return record

    def records(self) -> list[dict[str, Any]]:
        with translate_errors(self._path):
            return read_records(self._conn)

    def head(self) -> tuple[int, str] | None:
        with translate_errors(self._path):
            row = self._conn.execute(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def export(self, out: Path) -> None:
        """JSON Lines: a header with the device public key, then every record.

        Written to a temporary file and renamed, so a reader never sees half a ledger.
        """
        public = self._key.public_key()
        header = {
            "v": 1,
            "type": EXPORT_TYPE,
            "device_public_key": b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
            "device": device_fingerprint(public),
        }
        with translate_errors(self._path):
            rows = self._conn.execute("SELECT record FROM ledger ORDER BY seq").fetchall()
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        fd = private_file(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(canonical(header).decode() + "\n")
            for (record,) in rows:
                fh.write(record + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
