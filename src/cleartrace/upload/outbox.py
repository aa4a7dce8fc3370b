"""The outbox: bundles built and not yet acknowledged, in the store's SQLite file.

A bundle is built once and kept byte for byte until the collector acknowledges
its name, because sealing is randomised: rebuilding would give another name,
and a retry after a lost answer must send the same bytes for the collector to
recognise it. Redacting, holding or deleting a session drops its queued bundle
in the same transaction (see store/sessions.py): what the person removed
never leaves. A withdrawal or refusal does not touch the outbox (consent acts
stay in the consent package); instead a queued bundle is dropped when it is
next about to leave if it may hold a category that a bundle built now would
leave out or cut (consented.py): the same rule for both.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleartrace.categories import Category
from cleartrace.consent.ledger import Ledger
from cleartrace.errors import BundleInvalid
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.upload.bundle_header import MAX_HEADER, PREFIX, parse_header
from cleartrace.upload.consented import UploadConsent, categories_of_counts

if TYPE_CHECKING:
    from cleartrace.upload.client import Ack

__all__ = ["UPLOADED_AT", "Outbox", "Queued"]

log = logging.getLogger(__name__)

#: meta key prefix: when a session's bundle was acknowledged (wall-clock ns).
UPLOADED_AT = "uploaded_at:"


@dataclass(frozen=True, slots=True)
class Queued:
    """One bundle waiting in the outbox (its bytes stay in the database)."""

    name: str
    session_id: str | None
    created_ns: int
    head_seq: int
    size: int


#: Ledger kinds after which a session's bundle no longer shows what the person wants.
_CHANGES = frozenset({"session.redacted", "session.held", "session.deleted"})


def _changed_since(conn: sqlite3.Connection, session_id: str, seq: int) -> bool:
    """Whether the ledger records a redaction, hold or deletion of the session after `seq`."""
    rows = conn.execute("SELECT record FROM ledger WHERE seq > ?", (seq,)).fetchall()
    return any(
        (r := json.loads(text)).get("kind") in _CHANGES and r.get("session") == session_id
        for (text,) in rows
    )


#: Ledger kinds that may take back a category a queued bundle holds.
_TAKING_BACK = ("consent.withdrawn", "consent.refused")


def _held(header_prefix: bytes) -> frozenset[Category]:
    """The categories a bundle this device built may hold, read from its header."""
    try:
        counts = parse_header(header_prefix)[0]["counts"]
    except BundleInvalid:  # pragma: no cover - built here; treat as holding everything
        return frozenset(Category)
    return categories_of_counts(counts)


class Outbox:
    """The `outbox` table; one connection, one thread."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._conn = connect(db_path)

    def close(self) -> None:
        self._conn.close()

    def queued(self) -> list[Queued]:
        """Waiting bundles, oldest first (the order they must reach the collector)."""
        sql = (
            "SELECT name, session_id, created_ns, head_seq, length(bundle) FROM outbox"
            " ORDER BY created_ns, rowid"
        )
        with translate_errors(self._path):
            return [Queued(*row) for row in self._conn.execute(sql)]

    def bundle(self, name: str) -> bytes | None:
        """The bytes of a queued bundle; None if it was dropped meanwhile, or is
        dropped now because consent changed since it was built.

        A bundle built now would leave out a category refused or withdrawn
        since (not given again), and cut one withdrawn since at that
        withdrawal; a queued bundle holding such a category (a refusal or an
        outage kept it here) goes, and its session, still approved, is bundled
        again under the consent in force. Only reads happen unless a bundle
        goes: the recorder keeps writing meanwhile.

        Raises:
            StoreError: the database cannot be read or written.
        """
        with translate_errors(self._path):
            row = self._conn.execute(
                "SELECT head_seq, session_id FROM outbox WHERE name=?", (name,)
            ).fetchone()
            if row is None:
                return None
            if row[1] is not None and self._held_taken_back(name, int(row[0])):
                with transaction(self._conn, self._path) as conn:
                    conn.execute("DELETE FROM outbox WHERE name=?", (name,))
                log.info("queued bundle %s holds a category taken back; dropped", name[:16])
                return None
            row = self._conn.execute("SELECT bundle FROM outbox WHERE name=?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def _held_taken_back(self, name: str, head_seq: int) -> bool:
        """Whether the bundle built at ledger record `head_seq` holds a category
        the consent in force now takes back (UploadConsent.taken_back_since)."""
        # Almost always no consent act came after the bundle: one indexed range
        # read says so, and neither the ledger is folded nor the bundle read.
        clauses = " OR ".join("record LIKE ?" for _ in _TAKING_BACK)
        if not self._conn.execute(
            f"SELECT 1 FROM ledger WHERE seq > ? AND ({clauses}) LIMIT 1",  # noqa: S608 - fixed text
            (head_seq, *(f"%{kind}%" for kind in _TAKING_BACK)),
        ).fetchone():
            return False
        records = [
            json.loads(r) for (r,) in self._conn.execute("SELECT record FROM ledger ORDER BY seq")
        ]
        then = UploadConsent.from_records(r for r in records if int(r["seq"]) <= head_seq)
        taken = UploadConsent.from_records(records).taken_back_since(then)
        if not taken:
            return False
        prefix = self._conn.execute(
            "SELECT substr(bundle, 1, ?) FROM outbox WHERE name=?", (PREFIX + MAX_HEADER, name)
        ).fetchone()
        return prefix is not None and bool(taken & _held(bytes(prefix[0])))

    def add(self, name: str, session_id: str | None, head_seq: int, data: bytes) -> Queued:
        """Queue a bundle (durably: it is committed before anything is sent).

        Raises:
            DiskFull, StoreError: nothing was queued.
        """
        now = time.time_ns()
        with transaction(self._conn, self._path) as conn:
            if session_id is not None and (
                not conn.execute(
                    "SELECT 1 FROM sessions WHERE id=? AND state='approved'"
                    " AND wrapped_key IS NOT NULL",
                    (session_id,),
                ).fetchone()
                or _changed_since(conn, session_id, head_seq)
            ):
                # Held, redacted or deleted while the bundle was being built: the
                # bundle holds what the person removed, so it never leaves.
                return Queued(name, session_id, now, head_seq, 0)
            conn.execute(
                "INSERT OR IGNORE INTO outbox(name, session_id, created_ns, head_seq, bundle)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, session_id, now, head_seq, data),
            )
        return Queued(name, session_id, now, head_seq, len(data))

    def discard(self, name: str) -> None:
        """Drop a bundle the collector will never take (built on a stale ledger head)."""
        with transaction(self._conn, self._path) as conn:
            conn.execute("DELETE FROM outbox WHERE name=?", (name,))

    def acknowledged(self, item: Queued, ack: Ack, ledger: Ledger) -> bool:
        """The collector holds `item`: leave the outbox, mark the session
        uploaded and ledger it, all in one transaction. False if the bundle
        had already left (acknowledged by an earlier attempt)."""
        with transaction(self._conn, self._path) as conn:
            gone = conn.execute("DELETE FROM outbox WHERE name=?", (item.name,)).rowcount == 0
            if gone:
                return False
            if item.session_id is not None:
                conn.execute("UPDATE sessions SET state='uploaded' WHERE id=?", (item.session_id,))
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (UPLOADED_AT + item.session_id, time.time_ns()),
                )
            ledger.append_in(
                conn,
                "bundle.uploaded",
                bundle=item.name,
                witnessed={"seq": ack.head[0], "hash": ack.head[1]},
            )
        return True

    def uploaded_before(self, cutoff_ns: int) -> list[str]:
        """Uploaded sessions acknowledged at or before `cutoff_ns`."""
        sql = (
            "SELECT s.id FROM sessions s JOIN meta m ON m.key = ? || s.id"
            " WHERE s.state='uploaded' AND m.value <= ? ORDER BY m.value"
        )
        with translate_errors(self._path):
            return [r[0] for r in self._conn.execute(sql, (UPLOADED_AT, cutoff_ns))]

    def records_after(self, seq: int) -> list[dict[str, Any]]:
        """The ledger's records after `seq`, read in one snapshot."""
        with translate_errors(self._path):
            rows = self._conn.execute(
                "SELECT record FROM ledger WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        return [json.loads(r) for (r,) in rows]

    def record_hash_at(self, seq: int) -> str | None:
        """The hash of this device's ledger record `seq`, None if there is none."""
        with translate_errors(self._path):
            row = self._conn.execute("SELECT hash FROM ledger WHERE seq=?", (seq,)).fetchone()
        return None if row is None else str(row[0])
