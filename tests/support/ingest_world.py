"""An ingest world on real files: devices with signed ledgers in SQLite, their
bundles, and a collector's store written as the collector writes it (bundles
and witnessed heads, without HTTP), read back by ingest into a dataset.

`World` is one such store, its organisation keys and its dataset directory;
`Device` builds bundles of the ledger since the head last witnessed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.records import GENESIS, record_hash
from cleartrace.events import Event, Kind
from cleartrace.org.blobstore import DirStore, S3Store, bundle_key, head_key
from cleartrace.org.ingest import ingest
from cleartrace.org.ingest_summary import IngestSummary
from cleartrace.org.keys import OrgKeys
from cleartrace.store.db import connect
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.events_arrow import encode_events

POLICY = {"id": "acme", "version": 1, "sha256": "2" * 64}
ALL = ["app_focus", "clicks", "keys", "mouse_move", "scroll", "window_titles"]
# A session that runs over midnight UTC: its rows go to two day partitions.
T0 = datetime(2026, 12, 2, 23, 50, tzinfo=UTC)
TYPED_TEXT = "hunter2"
WINDOW_TITLE = "Salary review - confidential"


def ns(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_us(when: datetime) -> str:
    """RFC 3339 UTC with microseconds, as a redaction's interval is written."""
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def typed(text: str, start: datetime) -> list[Event]:
    out = []
    for i, char in enumerate(text):
        t = ns(start) + i * 100_000_000
        keysym = ord(char) if ord(char) < 0x100 else 0x01000000 + ord(char)
        out += [Event(t, Kind.KEY_DOWN, keysym), Event(t + 50_000_000, Kind.KEY_UP, keysym)]
    return out


def session_events() -> list[Event]:
    """Every kind of event, typed text, a title, markers, and some after midnight."""
    t = ns(at(1))
    return [
        Event(t, Kind.FOCUS, app="gedit", title=WINDOW_TITLE),
        *typed(TYPED_TEXT + "é€", at(1.5)),
        Event(t + 60 * 10**9, Kind.KEY_DOWN, 0xFF08),
        Event(t + 61 * 10**9, Kind.KEY_UP, 0xFF08),
        Event(t + 62 * 10**9, Kind.MOVE, 640, 400),
        Event(t + 63 * 10**9, Kind.BUTTON_DOWN, 640, 400, 1),
        Event(t + 64 * 10**9, Kind.BUTTON_UP, 640, 400, 1),
        Event(t + 65 * 10**9, Kind.SCROLL, 640, 400, 0, -1),
        Event(t + 66 * 10**9, Kind.EXCLUDED_START),
        Event(t + 67 * 10**9, Kind.EXCLUDED_END),
        *typed("ok", at(15)),  # 00:05 on the next day
        Event(ns(at(16)), Kind.MOVE, 10, 20),
    ]


class Device:
    """A device key, its ledger in a real SQLite file, and the head the collector witnessed."""

    def __init__(self, root: Path, org: OrgKeys) -> None:
        self.key = Ed25519PrivateKey.generate()
        path = root / f"device-{uuid.uuid4().hex}.db"
        self.ledger = Ledger(connect(path), path, self.key)
        self.org = org
        self.subject = secrets.token_hex(16)
        self.witnessed: tuple[int, str] = (0, GENESIS)
        self.fingerprint = self.ledger.device
        self.hex = self.fingerprint.removeprefix("sha256:")

    def act(self, kind: str, when: datetime, **fields: Any) -> dict[str, Any]:
        return self.ledger.append(kind, now=when, **fields)

    def give(self, when: datetime, categories: Sequence[str] = ALL) -> None:
        self.act("consent.given", when, categories=sorted(categories), policy=POLICY)

    def redact(
        self,
        session: str,
        start: datetime,
        end: datetime,
        events: int,
        categories: Sequence[str] = ("keys",),
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """A `session.redacted` by time of `categories` between `start` and `end`
        (microseconds kept), made at `when` (minute 70 by default)."""
        return self.act(
            "session.redacted",
            at(70) if when is None else when,
            session=session,
            method="time",
            events=events,
            categories=sorted(categories),
            interval={"start": utc_us(start), "end": utc_us(end)},
        )

    def bundle(
        self,
        events: Sequence[Event] = (),
        session: str | None = None,
        *,
        segment: Sequence[dict[str, Any]] | None = None,
        base: tuple[int, str] | None = None,
        org: OrgKeys | None = None,
        timing: str | None = "even",
        interval: tuple[datetime, datetime] | None = None,
    ) -> bytes:
        """A bundle of `events` and the ledger since the witnessed head; `timing`
        is what its header says of them (the events are sent as given; None
        leaves the field out, as a v1 header does), `interval` the session's."""
        records = self.ledger.records()
        base = self.witnessed if base is None else base
        if segment is None:
            segment = records[base[0] :]
        head_seq = base[0] + len(segment)
        head_hash = record_hash(segment[-1]) if segment else base[1]
        header: dict[str, Any] = {
            "subject": self.subject,
            "session": session,
            "interval": None
            if interval is None
            else {k: _iso(v) for k, v in zip(("start", "end"), interval, strict=True)},
            "created": "2026-12-03T01:00:00.000Z",
            "ledger": {
                "base": {"seq": base[0], "hash": base[1]},
                "head": {"seq": head_seq, "hash": head_hash},
            },
            "policy": POLICY,
            "counts": {},
            "events": len(events),
            "redactions": [],
            **({} if timing is None else {"timing": timing}),
        }
        raw = build_bundle(
            header_fields=header,
            ledger=list(segment),
            events_ipc=encode_events(list(events), 0) if session else b"",
            org_key=(org or self.org).bundle_public,
            device_key=self.key,
        )
        self.witnessed = (head_seq, head_hash)
        return raw


class Collector:
    """Stores bundles and witnessed heads as the collector does (org.blobstore)."""

    def __init__(self, store: DirStore | S3Store) -> None:
        self.store = store

    def upload(self, device: Device, raw: bytes, *, name: str | None = None) -> str:
        name = name or hashlib.sha256(raw).hexdigest()
        self.store.put(bundle_key(name), raw)
        seq, digest = device.witnessed
        head = {"device": device.fingerprint, "seq": seq, "hash": digest, "bundle": name}
        self.store.put(head_key(device.hex), json.dumps({**head, "time": "x"}).encode())
        return name


_ORDER_EVENTS = (
    "SELECT epoch_us(time) AS t_us, * EXCLUDE (time) "
    "FROM read_parquet(?, hive_partitioning=true) ORDER BY t_us, kind"
)
_ORDER_ACTIONS = (
    "SELECT epoch_us(time) AS t_us, * EXCLUDE (time) "
    "FROM read_parquet(?, hive_partitioning=true) ORDER BY session, episode, step"
)


class World:
    """A collector's store directory, the org keys, a dataset directory, and devices."""

    def __init__(self, root: Path, org: OrgKeys, keys: Path) -> None:
        self.root = root
        self.org = org
        self.keys = keys
        self.source = root / "store"
        self.source.mkdir()
        self.collector = Collector(DirStore(self.source))
        self.out = root / "dataset"
        self.devices: list[Device] = []

    def device(self) -> Device:
        device = Device(self.root, self.org)
        self.devices.append(device)
        return device

    def ingest(self, **kwargs: Any) -> IngestSummary:
        return ingest(str(self.source), self.keys, self.out, **kwargs)

    def rows(self) -> list[dict[str, Any]]:
        """Every events row, as DuckDB reads the hive-partitioned Parquet files."""
        return self._read("events", _ORDER_EVENTS)

    def actions(self) -> list[dict[str, Any]]:
        """Every actions row, in (session, episode, step) order."""
        return self._read("actions", _ORDER_ACTIONS)

    def _read(self, table: str, query: str) -> list[dict[str, Any]]:
        if not list((self.out / table).rglob("*.parquet")):
            return []
        result = duckdb.execute(query, [f"{self.out}/{table}/**/*.parquet"])
        columns = [d[0] for d in result.description or []]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def recorded_session(
    w: World, device: Device, *, timing: str = "even"
) -> tuple[str, str, list[Event]]:
    """Consent, a session of every kind of event, uploaded; returns (session, bundle, events).

    With `timing` "raw", the person consented to `typing_rhythm` too and the
    events go as captured: where a test needs a redaction judged on the exact
    times (an "even" bundle's is judged on each event's possible span)."""
    device.give(at(0), [*ALL, "typing_rhythm"] if timing == "raw" else ALL)
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    events = session_events()
    device.act("session.ended", at(17), session=session)
    name = w.collector.upload(device, device.bundle(events, session, timing=timing))
    return session, name, events


def rejected(summary: IngestSummary) -> dict[str, str]:
    return {r.bundle: r.reason for r in summary.rejected}
