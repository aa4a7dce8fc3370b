"""The uploader: approved sessions become bundles, bundles reach the collector.

One pass (`Uploader.run`), used by `cleartrace upload --now` and, on a timer,
by the recorder and the tray (`BackgroundUploader`):

1. sessions whose hold period passed are approved (ledgered as such);
2. bundles already queued are sent first, oldest first;
3. each approved session is bundled against the ledger head the collector
   witnessed (asked just before), queued durably, then sent;
4. ledger records not yet uploaded (a withdrawal, a deletion) travel in a
   ledger-only bundle, so the organisation learns of them without new data;
5. uploaded sessions past the policy's `keep_uploaded_days` are shredded.

A bundle leaves the outbox only when the collector acknowledged its name.
Failures that may pass (collector down, 5xx, 429) are retried with
exponential backoff and full jitter; the bundle stays queued either way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, TypeVar

import pyarrow.compute as pc

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.consent.records import GENESIS, rfc3339
from cleartrace.consent.signed_policy import installed_policy
from cleartrace.errors import ClearTraceError, UploadError, UsageError
from cleartrace.events import CATEGORY_OF_KIND, Kind
from cleartrace.faults import fault_point
from cleartrace.paths import Paths, exclusive_lock
from cleartrace.preferences import hold_days
from cleartrace.review.approval import settle
from cleartrace.store.db import connect
from cleartrace.store.keys import Keys
from cleartrace.store.sessions import Store
from cleartrace.upload.alarm import ROLLBACK_DETECTED
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.client import Ack, CollectorClient, CollectorRefused, check_transport
from cleartrace.upload.consented import UploadConsent
from cleartrace.upload.enrolment import Enrolment, load_enrolment
from cleartrace.upload.events_arrow import encode_table, events_table
from cleartrace.upload.outbox import UPLOADED_AT, Outbox, Queued
from cleartrace.upload.suites import OrgPublicKey

__all__ = [
    "UPLOAD_INTERVAL",
    "BackgroundUploader",
    "Retry",
    "UploadBusy",
    "UploadReport",
    "Uploader",
    "require_enrolment",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_DAY_NS = 86_400 * 10**9
#: Seconds between background upload passes while enrolled.
UPLOAD_INTERVAL = 600.0
#: Records that alone do not warrant a ledger-only bundle (else every upload
#: would cause the next one, for its own "bundle.uploaded" record).
_QUIET_KINDS = frozenset({"bundle.uploaded", "session.shredded"})
_LOCK = "upload.lock"


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base * 2**n))."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2**attempt))


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


class UploadBusy(UploadError):
    """Another process of this home is uploading now; its pass does the work."""


def require_enrolment(paths: Paths) -> Enrolment:
    """The enrolment, or a UsageError saying how to enrol."""
    enrolment = load_enrolment(paths)
    if enrolment is None:
        raise UsageError(
            "this device is not enrolled with a collector; run 'cleartrace enroll "
            "--collector URL --policy FILE --token T' with what your organisation gave you"
        )
    return enrolment


def _org_key(policy: Policy) -> OrgPublicKey:
    if policy.org_key is None:
        raise UsageError(
            f"the policy in force ({policy.id} v{policy.version}) names no organisation key; "
            "enrol with your organisation's signed policy first"
        )
    return policy.org_key


class Uploader:
    """One device's uploads. Opens its own connections, so any thread may own it."""

    def __init__(
        self,
        paths: Paths,
        keys: Keys,
        *,
        retry: Retry = Retry(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        insecure_http: bool = False,
    ) -> None:
        self._insecure_http = insecure_http
        self._paths = paths
        self._keys = keys
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret

    def run(self, now_ns: int | None = None) -> UploadReport:
        """One pass; see the module docstring.

        Raises:
            UsageError: not enrolled, or the policy names no organisation key; the
                enrolment names a plain http:// collector on another machine
                (without `insecure_http`).
            UploadError: the collector stayed unreachable or refused; what was
                acknowledged before is reported in the ledger, the rest stays queued.
        """
        enrolment = require_enrolment(self._paths)
        check_transport(enrolment.collector, insecure_http=self._insecure_http)
        signed = installed_policy(self._paths)
        if signed is None:
            raise UsageError(
                "this device is enrolled but its organisation's policy is missing; "
                "enrol again ('cleartrace enroll')"
            )
        enrolment.check_policy(signed)
        policy = signed.policy
        org_key = _org_key(policy)
        # One pass at a time per home (the tray, the recorder and the CLI may
        # all try): two would bundle the same session twice.
        busy = "another upload is running for this home; try again when it has finished"
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(exclusive_lock(self._paths.home / _LOCK, busy))
            except UsageError as exc:
                raise UploadBusy(str(exc), retryable=True) from None
            return self._run(enrolment, policy, org_key, now_ns)

    def _run(
        self, enrolment: Enrolment, policy: Policy, org_key: OrgPublicKey, now_ns: int | None
    ) -> UploadReport:
        store = Store.open(self._paths, self._keys)
        ledger = Ledger(connect(self._paths.db), self._paths.db, self._keys.device)
        outbox = Outbox(self._paths.db)
        client = CollectorClient(enrolment.collector)
        report = UploadReport()
        try:
            report.approved = settle(store, ledger, hold_days(self._paths, policy), now_ns)
            run = _Pass(self, enrolment, policy, org_key, store, ledger, outbox, client, report)
            run.flush_queue()
            run.bundle_sessions()
            run.bundle_ledger()
            report.shredded = _shred(store, ledger, outbox, policy, now_ns)
            if run.refused:
                raise UploadError(
                    f"the collector refused {len(run.refused)} bundle(s) ({run.refused[0]}); "
                    "they stay in the outbox and are offered again on the next upload; "
                    "everything else was uploaded"
                )
        finally:
            client.close()
            outbox.close()
            ledger.close()
            store.close()
        return report

    def call(self, func: Callable[[], _T]) -> _T:
        """`func()` with retries for failures that may pass."""
        for attempt in range(self._retry.attempts):
            try:
                return func()
            except UploadError as exc:
                if not exc.retryable or attempt == self._retry.attempts - 1:
                    raise
                delay = self._retry.delay(attempt, self._rng)
                if isinstance(exc, CollectorRefused) and exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self._retry.cap))
                log.info(
                    "upload attempt %d failed (%s); retrying in %.1f s", attempt + 1, exc, delay
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Pass:
    """The state of one `Uploader.run`."""

    uploader: Uploader
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

    def send(self, item: Queued) -> Ack | None:
        """PUT one queued bundle; None if the collector did not take it."""
        data = self.outbox.bundle(item.name)
        if data is None:
            return None
        try:
            ack = self.uploader.call(lambda: self.client.put_bundle(item.name, data))
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
        head = self.uploader.call(lambda: self.client.head(self.enrolment.device_hex))
        self.check_extends(head)
        return head

    def check_extends(self, witnessed: tuple[int, str]) -> None:
        """The local ledger must contain the head the collector witnessed; if it
        does not, the first time ledger `ledger.rollback` (heads only).

        Raises:
            UploadError: it does not.
        """
        seq, digest = witnessed
        if (seq == 0 and digest == GENESIS) or self.outbox.record_hash_at(seq) == digest:
            return
        alarm = {"seq": seq, "hash": digest}
        if not any(
            r["kind"] == ROLLBACK_DETECTED and r["witnessed"] == alarm
            for r in self.ledger.records()
        ):
            local = self.ledger.head() or (0, GENESIS)
            self.ledger.append(
                ROLLBACK_DETECTED, witnessed=alarm, local={"seq": local[0], "hash": local[1]}
            )
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
        segment = self.outbox.records_after(base[0])
        head = (segment[-1]["seq"], _hash_of(self.outbox, segment[-1]["seq"])) if segment else base
        fields: dict[str, Any] = {
            "subject": self.enrolment.subject,
            "session": session_id,
            "created": rfc3339(datetime.now(UTC)),
            "ledger": {
                "base": {"seq": base[0], "hash": base[1]},
                "head": {"seq": head[0], "hash": head[1]},
            },
            "policy": self.policy.reference(),
            "interval": None,
            "counts": {},
            "events": 0,
            "redactions": [],
        }
        events_ipc = b""
        if session_id is not None:
            events_ipc = self.session_part(session_id, fields)
        data = build_bundle(
            header_fields=fields,
            ledger=segment,
            events_ipc=events_ipc,
            org_key=self.org_key,
            device_key=self.uploader._keys.device,
        )
        fault_point("upload.built")
        item = self.outbox.add(sha256(data).hexdigest(), session_id, head[0], data)
        fault_point("upload.queued")
        if item.size:
            self.send(item)

    def session_part(self, session_id: str, fields: dict[str, Any]) -> bytes:
        info = self.store.session(session_id)
        started, anchor = self.store.anchors(session_id)
        # What a category no longer consented recorded, and a field another
        # category owns without that one's consent, do not leave (consented.py).
        consent = UploadConsent.from_records(self.ledger.records())
        events = consent.filter(events_table(self.store.read_events(session_id), started - anchor))
        counts: Counter[str] = Counter()
        for row in pc.value_counts(events.column("kind")).to_pylist():
            category = CATEGORY_OF_KIND[Kind(row["values"])]
            if category is not None:
                counts[category.value] += row["counts"]
        ended = info.ended_ns if info.ended_ns is not None else started
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
        return encode_table(events)

    def bundle_sessions(self) -> None:
        queued = {q.session_id for q in self.outbox.queued()}
        approved = [
            s
            for s in self.store.list_sessions()
            if s.state == "approved"
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


def _shred(
    store: Store, ledger: Ledger, outbox: Outbox, policy: Policy, now_ns: int | None
) -> list[str]:
    """Shred local copies of uploaded sessions whose retention ran out."""
    if policy.keep_uploaded_days is None:
        return []
    now = time.time_ns() if now_ns is None else now_ns
    done = []
    for session_id in outbox.uploaded_before(now - policy.keep_uploaded_days * _DAY_NS):

        def record(conn: Any, sid: str = session_id) -> None:
            conn.execute("DELETE FROM meta WHERE key=?", (UPLOADED_AT + sid,))
            ledger.append_in(conn, "session.shredded", session=sid)

        store.delete_session(session_id, record)
        done.append(session_id)
    return done


class BackgroundUploader:
    """Runs `Uploader.run` every `interval` seconds on its own thread while enrolled.

    A failed pass is tried again after an exponentially growing, jittered wait
    (capped at `interval`); `on_busy(True/False)` brackets each pass, which is
    what the tray's "uploading" icon shows.
    """

    def __init__(
        self,
        paths: Paths,
        keys: Keys,
        *,
        interval: float = UPLOAD_INTERVAL,
        on_busy: Callable[[bool], None] | None = None,
    ) -> None:
        self._uploader = Uploader(paths, keys, retry=Retry(attempts=1))
        self._paths = paths
        self._interval = interval
        self._on_busy = on_busy
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cleartrace-upload", daemon=True)
        #: Passes finished so far, sessions they uploaded, why the last one failed.
        self.passes = 0
        self.sessions_uploaded = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self) -> None:
        """Run a pass now (e.g. after the person approved a session)."""
        self._wake.set()

    def _loop(self) -> None:
        failures = 0
        rng = random.Random()  # noqa: S311 - jitter, not a secret
        while not self._stop.is_set():
            wait = self._interval
            if self._on_busy is not None:
                self._on_busy(True)
            try:
                if load_enrolment(self._paths) is not None:
                    report = self._uploader.run()
                    self.sessions_uploaded += len(report.sessions)
                    self.passes += 1
                failures, self.last_error = 0, None
            except UploadBusy:
                wait = min(self._interval, 30.0)  # the other pass does the work; look again soon
            except Exception as exc:  # this thread must outlive any one failed pass
                failures += 1
                self.passes += 1
                self.last_error = (
                    str(exc)
                    if isinstance(exc, ClearTraceError)
                    else f"the upload failed ({type(exc).__name__}); it is tried again later"
                )
                wait = rng.uniform(0, min(self._interval, 5.0 * 2**failures))
                log.warning(
                    "background upload failed (%s); next try in %.0f s", type(exc).__name__, wait
                )
            finally:
                if self._on_busy is not None:
                    self._on_busy(False)
            self._wake.wait(wait)
            self._wake.clear()
