"""One upload pass's steps: send what is queued, bundle sessions, bundle the ledger.

`Uploader.run` (uploader.py) opens the store, the ledger, the outbox and the
client, then drives an `UploadPass` through these steps. Every bundle is
built on the head the collector witnessed, asked just before; a queued
bundle is offered again byte for byte until acknowledged, unless it now
holds what the person withdrew (outbox.py), and a head this ledger does not
hold stops everything and raises the alarm (alarm.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, Protocol, TypeVar

import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.coverage import coverage_of
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.consent.records import GENESIS
from cleartrace.errors import CollectorRefused, UploadError
from cleartrace.events import CATEGORY_OF_KIND, Kind
from cleartrace.faults import fault_point
from cleartrace.formats import rfc3339
from cleartrace.review.text import reconstruct
from cleartrace.review.withheld import (
    WITHHELD,
    detections,
    released_in,
    scrub_titles,
    typed_away,
    withhold,
)
from cleartrace.store.outbox_rows import Queued
from cleartrace.store.session_state import SessionState
from cleartrace.store.sessions import Store
from cleartrace.suites import OrgPublicKey
from cleartrace.upload.alarm import ROLLBACK_DETECTED, worth_alarming
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.client import Ack, CollectorClient
from cleartrace.upload.consented import UploadConsent
from cleartrace.upload.enrolment import Enrolment
from cleartrace.upload.events_arrow import encode_table, events_table
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.retiming import retime

__all__ = ["Caller", "UploadPass", "UploadReport"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Records that alone do not warrant a ledger-only bundle (else every upload
#: would cause the next one, for its own "bundle.uploaded" record).
_QUIET_KINDS = frozenset({"bundle.uploaded", "session.shredded"})


class Caller(Protocol):
    """Calls a collector request with the uploader's retries (`Uploader.call`)."""

    def __call__(self, func: Callable[[], _T]) -> _T: ...


@dataclass(slots=True)
class UploadReport:
    """What one pass did; names and ids only."""

    approved: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    shredded: list[str] = field(default_factory=list)
    head: tuple[int, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "bundles": self.uploaded,
            "sessions": self.sessions,
            "shredded": self.shredded,
            "witnessed": None if self.head is None else {"seq": self.head[0], "hash": self.head[1]},
        }


@dataclass
class UploadPass:
    """The state of one `Uploader.run` and its steps, in the order it takes them."""

    call: Caller
    device_key: Ed25519PrivateKey
    enrolment: Enrolment
    policy: Policy
    org_key: OrgPublicKey
    store: Store
    ledger: Ledger
    outbox: Outbox
    client: CollectorClient
    report: UploadReport
    #: Why bundles were refused in this pass (each stays queued).
    refused: list[str] = field(default_factory=list)
    #: Whether this pass ledgered a rollback alarm (one at most: alarm.py).
    alarmed: bool = False

    def send(self, item: Queued) -> Ack | None:
        """PUT one queued bundle; None if the collector did not take it."""
        data = self.outbox.bundle(item.name)
        if data is None:
            return None
        try:
            ack = self.call(lambda: self.client.put_bundle(item.name, data, self.device_key))
        except CollectorRefused as exc:
            if exc.retryable:
                raise  # the collector is busy or failing: nothing more this pass
            if exc.status != 409:
                # Refused for good as it is (too large, not enrolled, ...): it stays
                # queued, and must not keep what comes after it (a withdrawal) back.
                log.warning("bundle %s refused: %s", item.name[:16], exc.reason or exc.status)
                self.refused.append(str(exc))
                return None
            # Built on a head the collector has moved past (an answer lost
            # after it stored an earlier bundle): rebuild from its head. If this
            # ledger does not even hold that head, it went back in time.
            self.outbox.discard(item.name)
            witnessed = _head_of(exc.body.get("head"))
            if witnessed is not None:
                self.check_extends(witnessed)
            log.warning(
                "bundle %s no longer extends the witnessed head; rebuilding", item.name[:16]
            )
            return None
        fault_point("upload.stored")
        self.outbox.acknowledged(item, ack, self.ledger)
        fault_point("upload.acknowledged")
        self.report.uploaded.append(item.name)
        if item.session_id is not None:
            self.report.sessions.append(item.session_id)
        self.report.head = ack.head
        log.info("bundle %s acknowledged; witnessed head %d", item.name[:16], ack.head[0])
        return ack

    def flush_queue(self) -> None:
        for item in self.outbox.queued():
            self.send(item)

    def witnessed_head(self) -> tuple[int, str]:
        """The collector's head for this device, checked against the local ledger.

        Raises:
            UploadError: the local ledger does not extend it (rewritten or
                restored from an old backup): nothing more can be uploaded.
        """
        head = self.call(lambda: self.client.head(self.enrolment.device_hex))
        self.check_extends(head)
        return head

    def check_extends(self, witnessed: tuple[int, str]) -> None:
        """The local ledger must contain the head the collector witnessed; if it
        does not, ledger `ledger.rollback` (heads only) unless an alarm already
        stands for it or a higher head, or this pass wrote one (alarm.py).

        Raises:
            UploadError: it does not.
        """
        seq, digest = witnessed
        if (seq == 0 and digest == GENESIS) or self.outbox.record_hash_at(seq) == digest:
            return
        if not self.alarmed and worth_alarming(self.ledger.records(), seq):
            local = self.ledger.head() or (0, GENESIS)
            self.ledger.append(
                ROLLBACK_DETECTED,
                witnessed={"seq": seq, "hash": digest},
                local={"seq": local[0], "hash": local[1]},
            )
            self.alarmed = True
            log.warning(
                "the collector witnessed ledger record %d, which this ledger does not hold", seq
            )
        raise UploadError(
            f"this device's consent ledger does not extend the head the collector witnessed "
            f"(record {seq}): it was rewritten or restored from an old backup; "
            "ask your privacy officer — nothing more is uploaded from this ledger"
        )

    def build_and_send(self, session_id: str | None) -> None:
        base = self.witnessed_head()
        fields: dict[str, Any] = {
            "subject": self.enrolment.subject,
            "session": session_id,
            "created": rfc3339(datetime.now(UTC)),
            "policy": self.policy.reference(),
            "interval": None,
            "counts": {},
            "events": 0,
            "redactions": [],
            # A ledger-only bundle carries no key timing at all.
            "timing": "even",
        }
        events_ipc = b""
        # What the session's events are read after: a redaction, hold or release
        # recorded later is not in them, though it may be in the segment below.
        read_after = (self.ledger.head() or (0, GENESIS))[0]
        if session_id is not None:
            # First: it may ledger what it withholds, which this bundle then carries.
            events_ipc = self.session_part(session_id, fields)
        segment = self.outbox.records_after(base[0])
        head = (segment[-1]["seq"], _hash_of(self.outbox, segment[-1]["seq"])) if segment else base
        fields["ledger"] = {
            "base": {"seq": base[0], "hash": base[1]},
            "head": {"seq": head[0], "hash": head[1]},
        }
        data = build_bundle(
            header_fields=fields,
            ledger=segment,
            events_ipc=events_ipc,
            org_key=self.org_key,
            device_key=self.device_key,
        )
        fault_point("upload.built")
        item = self.outbox.add(
            sha256(data).hexdigest(), session_id, head[0], data, read_after=read_after
        )
        fault_point("upload.queued")
        if item.size:
            self.send(item)

    def session_part(self, session_id: str, fields: dict[str, Any]) -> bytes:
        info = self.store.session(session_id)
        started, anchor = self.store.anchors(session_id)
        records = self.ledger.records()
        raw = self.store.read_events(session_id)
        # What the detectors find does not leave unless the person released it.
        texts = reconstruct(raw)
        found = detections(
            raw,
            self.policy,
            started_ns=started,
            anchor_ns=anchor,
            released=released_in(records, session_id),
            streams=texts,
        )
        away = typed_away(raw, self.policy, started_ns=started, anchor_ns=anchor, streams=texts)
        withheld = withhold(found) | away
        if not withheld.empty:
            raw = [e for i, e in enumerate(raw) if i not in withheld.positions]
        raw, in_titles = scrub_titles(raw, self.policy)
        spans = dict(sorted((Counter(withheld.spans) + Counter(in_titles)).items()))
        if spans:
            self.ledger_withheld(session_id, spans, records)
        # What a category no longer consented recorded, and a field another
        # category owns without that one's consent, do not leave (consented.py).
        coverage = coverage_of(records)
        consent = UploadConsent.from_coverage(coverage)
        events = consent.filter(events_table(raw, started - anchor))
        ended = info.ended_ns if info.ended_ns is not None else started
        # Key timing identifies the typist: it leaves as typed only under
        # typing_rhythm, consented now and throughout the session, and not
        # withdrawn since it began: like any category, what was captured before
        # its latest withdrawal never leaves, even once given again (retiming.py).
        rhythm_withdrawn = coverage.withdrawn_at().get(Category.TYPING_RHYTHM)
        raw_timing = (
            Category.TYPING_RHYTHM in coverage.consented_now()
            and (rhythm_withdrawn is None or rhythm_withdrawn < started)
            and coverage.allowed_throughout(Category.TYPING_RHYTHM, started, ended)
        )
        if not raw_timing:
            events = retime(events)
        fields["timing"] = "raw" if raw_timing else "even"
        counts: Counter[str] = Counter()
        for row in pc.value_counts(events.column("kind")).to_pylist():
            category = CATEGORY_OF_KIND[Kind(row["values"])]
            if category is not None:
                counts[category.value] += row["counts"]
        fields["interval"] = {"start": _time(started), "end": _time(ended)}
        fields["counts"] = dict(sorted(counts.items()))
        fields["events"] = events.num_rows
        fields["redactions"] = [
            {
                "method": r.method,
                "events": sum(r.removed.values()),
                "categories": sorted(r.removed),
                "interval": {"start": _time(r.from_ns), "end": _time(r.to_ns)},
            }
            for r in self.store.redactions(session_id)
            if r.removed
        ]
        if withheld.interval is not None:
            fields["redactions"].append(
                {
                    "method": "auto",
                    "events": len(withheld.positions),
                    "spans": withheld.spans,
                    "interval": withheld.interval,
                }
            )
        if in_titles:
            fields["redactions"].append({"method": "auto-titles", "spans": in_titles})
        return encode_table(events)

    def ledger_withheld(
        self, session_id: str, spans: dict[str, int], records: list[dict[str, Any]]
    ) -> None:
        """Ledger what a bundle of the session withholds, unless the last such
        record says the same (a bundle rebuilt after a 409 withholds it again)."""
        last = next(
            (r for r in reversed(records) if r["kind"] == WITHHELD and r["session"] == session_id),
            None,
        )
        if last is None or last["spans"] != spans:
            self.ledger.append(WITHHELD, session=session_id, spans=spans)

    def bundle_sessions(self) -> None:
        queued = {q.session_id for q in self.outbox.queued()}
        approved = [
            s
            for s in self.store.list_sessions()
            if s.state == SessionState.APPROVED
            and s.id not in queued
            and self.enrolment.may_upload(s.started_ns)
        ]
        for info in sorted(approved, key=lambda s: s.ended_ns or 0):
            self.build_and_send(info.id)

    def bundle_ledger(self) -> None:
        base = self.witnessed_head()
        if any(r["kind"] not in _QUIET_KINDS for r in self.outbox.records_after(base[0])):
            self.build_and_send(None)


def _head_of(obj: object) -> tuple[int, str] | None:
    """The witnessed head a 409 answer carries, if it carries a well-formed one."""
    if isinstance(obj, dict) and type(obj.get("seq")) is int and isinstance(obj.get("hash"), str):
        return int(obj["seq"]), str(obj["hash"])
    return None


def _hash_of(outbox: Outbox, seq: int) -> str:
    digest = outbox.record_hash_at(seq)
    if digest is None:  # pragma: no cover - records are never removed
        raise UploadError(f"ledger record {seq} vanished while bundling; try again")
    return digest


def _time(ns: int) -> str:
    return rfc3339(datetime.fromtimestamp(ns / 1e9, UTC))
