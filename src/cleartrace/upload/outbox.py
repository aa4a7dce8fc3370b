"""The outbox: bundles built and not yet acknowledged, in the store's SQLite file.

A bundle is built once and kept byte for byte until the collector acknowledges
its name, because sealing is randomised: rebuilding would give another name,
and a retry after a lost answer must send the same bytes for the collector to
recognise it. Redacting, holding or deleting a session drops its queued bundle
in the same transaction (store/outbox_rows.py `drop_for_session`): what the person removed
never leaves. A withdrawal or refusal does not touch the outbox (consent acts
stay in the consent package); instead a queued bundle is dropped when it is
next about to leave if it may hold a category that a bundle built now would
leave out or cut (consented.py): the same rule for both.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleartrace.categories import Category
from cleartrace.consent.ledger import Ledger
from cleartrace.errors import BundleInvalid
from cleartrace.store import ledger_rows, outbox_rows
from cleartrace.store.db import connect, transaction
from cleartrace.store.outbox_rows import Queued
from cleartrace.upload.bundle_header import MAX_HEADER, PREFIX, parse_header, timing_of
from cleartrace.upload.consented import UploadConsent, categories_of_counts

if TYPE_CHECKING:
    import sqlite3

    from cleartrace.upload.client import Ack

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

#: Ledger kinds after which a session's bundle no longer shows what the person wants.
_CHANGES = frozenset({"session.redacted", "session.held", "session.deleted", "detection.released"})


def _changed_since(conn: sqlite3.Connection, path: Path, session_id: str, seq: int) -> bool:
    """Whether the ledger records a redaction, hold, deletion or release (of a
    detection the bundle withheld) of the session after `seq`."""
    return any(
        r.get("kind") in _CHANGES and r.get("session") == session_id
        for r in ledger_rows.records_after(conn, path, seq)
    )


#: Ledger kinds that may take back a category a queued bundle holds.
_TAKING_BACK = ("consent.withdrawn", "consent.refused")


def _held(header_prefix: bytes) -> frozenset[Category]:
    """The categories a bundle this device built may hold, read from its header."""
    try:
        header = parse_header(header_prefix)[0]
    except BundleInvalid:  # pragma: no cover - built here; treat as holding everything
        return frozenset(Category)
    held = categories_of_counts(header["counts"])
    if timing_of(header) == "raw" and Category.KEYS in held:
        # Keys as typed: held under typing_rhythm too (a withdrawal of it drops
        # the bundle, and the session is bundled again, evened out).
        held |= {Category.TYPING_RHYTHM}
    return held


class Outbox:
    """The `outbox` table; one connection, one thread."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._conn = connect(db_path)

    def close(self) -> None:
        self._conn.close()

    def queued(self) -> list[Queued]:
        """Waiting bundles, oldest first (the order they must reach the collector)."""
        return outbox_rows.queued(self._conn, self._path)

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
        at = outbox_rows.queued_at(self._conn, self._path, name)
        if at is None:
            return None
        head_seq, session_id = at
        if session_id is not None and self._held_taken_back(name, head_seq):
            with transaction(self._conn, self._path) as conn:
                outbox_rows.drop(conn, name)
            log.info("queued bundle %s holds a category taken back; dropped", name[:16])
            return None
        return outbox_rows.bundle(self._conn, self._path, name)

    def _held_taken_back(self, name: str, head_seq: int) -> bool:
        """Whether the bundle built at ledger record `head_seq` holds a category
        the consent in force now takes back (UploadConsent.taken_back_since)."""
        # Almost always no consent act came after the bundle: one indexed range
        # read says so, and neither the ledger is folded nor the bundle read.
        if not ledger_rows.any_after(self._conn, self._path, head_seq, _TAKING_BACK):
            return False
        records = ledger_rows.records(self._conn, self._path)
        then = UploadConsent.from_records(r for r in records if int(r["seq"]) <= head_seq)
        taken = UploadConsent.from_records(records).taken_back_since(then)
        if not taken:
            return False
        prefix = outbox_rows.header_prefix(self._conn, self._path, name, PREFIX + MAX_HEADER)
        return prefix is not None and bool(taken & _held(prefix))

    def add(
        self, name: str, session_id: str | None, head_seq: int, data: bytes, *, read_after: int = -1
    ) -> Queued:
        """Queue a bundle (durably: it is committed before anything is sent).

        `read_after`: the ledger record the session's events were read after,
        when that is before `head_seq` (the bundle's segment may end with
        records made while it was built): a redaction, hold, deletion or
        release after it means the events are not what the person wants now.

        Raises:
            DiskFull, StoreError: nothing was queued.
        """
        now = time.time_ns()
        since = head_seq if read_after < 0 else min(head_seq, read_after)
        with transaction(self._conn, self._path) as conn:
            if session_id is not None and (
                not outbox_rows.may_queue(conn, session_id)
                or _changed_since(conn, self._path, session_id, since)
            ):
                # Held, redacted or deleted while the bundle was being built: the
                # bundle holds what the person removed, so it never leaves.
                return Queued(name, session_id, now, head_seq, 0)
            outbox_rows.add(conn, name, session_id, now, head_seq, data)
        return Queued(name, session_id, now, head_seq, len(data))

    def discard(self, name: str) -> None:
        """Drop a bundle the collector will never take (built on a stale ledger head)."""
        with transaction(self._conn, self._path) as conn:
            outbox_rows.drop(conn, name)

    def acknowledged(self, item: Queued, ack: Ack, ledger: Ledger) -> bool:
        """The collector holds `item`: leave the outbox, mark the session
        uploaded and ledger it, all in one transaction. False if the bundle
        had already left (acknowledged by an earlier attempt)."""
        with transaction(self._conn, self._path) as conn:
            prefix = outbox_rows.header_prefix(conn, self._path, item.name, PREFIX + MAX_HEADER)
            if prefix is None or not outbox_rows.drop(conn, item.name):
                return False
            fields: dict[str, Any] = {
                "bundle": item.name,
                "witnessed": {"seq": ack.head[0], "hash": ack.head[1]},
            }
            if item.session_id is not None:
                outbox_rows.mark_uploaded(conn, item.session_id, time.time_ns())
                # Which key timing left, as the bundle's header says it.
                fields["timing"] = timing_of(parse_header(prefix)[0])
            ledger.append_in(conn, "bundle.uploaded", **fields)
        return True

    def uploaded_before(self, cutoff_ns: int) -> list[str]:
        """Uploaded sessions acknowledged at or before `cutoff_ns`."""
        return outbox_rows.uploaded_before(self._conn, self._path, cutoff_ns)

    def records_after(self, seq: int) -> list[dict[str, Any]]:
        """The ledger's records after `seq`, read in one snapshot."""
        return ledger_rows.records_after(self._conn, self._path, seq)

    def record_hash_at(self, seq: int) -> str | None:
        """The hash of this device's ledger record `seq`, None if there is none."""
        return ledger_rows.hash_at(self._conn, self._path, seq)
