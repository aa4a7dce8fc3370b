"""Ingest end to end on real files: real bundles, real signed ledgers, read back with DuckDB."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace import cli
from cleartrace.commands.ingest import register
from cleartrace.consent.records import make_record, record_hash, sign_record
from cleartrace.errors import UsageError
from cleartrace.events import Event, Kind
from cleartrace.org.blobstore import S3Store, bundle_key, head_key
from cleartrace.org.dataset import MANIFEST, Dataset
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import generate
from cleartrace.org.witness import load_or_create, sign_head
from tests.support.ingest_world import (
    ALL,
    POLICY,
    TYPED_TEXT,
    WINDOW_TITLE,
    Collector,
    Device,
    World,
    at,
    ns,
    recorded_session,
    rejected,
    session_events,
    typed,
)


def expected_rows(events: list[Event], device: Device, session: str, bundle: str) -> list[Any]:
    """The rows of `events`, in order: key rows name the app of the latest focus before them."""
    out, app = [], None
    for event in sorted(events, key=lambda e: e.t_ns):
        app = event.app if event.kind is Kind.FOCUS else app
        out.append(expected_row(event, device, session, bundle, app))
    return sort_rows(out)


def expected_row(
    event: Event, device: Device, session: str, bundle: str, focus_app: str | None = None
) -> dict[str, Any]:
    kind = Kind(event.kind)
    category = event.category
    is_key = kind in (Kind.KEY_DOWN, Kind.KEY_UP)
    pointer = kind in (Kind.MOVE, Kind.BUTTON_DOWN, Kind.BUTTON_UP, Kind.SCROLL)
    placed = pointer or kind in (Kind.FOCUS, Kind.MONITOR)
    sized = kind in (Kind.FOCUS, Kind.MONITOR)
    char = None
    if is_key:
        char = chr(event.a - 0x01000000) if event.a > 0x01000000 else None
        char = chr(event.a) if event.a < 0x100 else char
    day = datetime.fromtimestamp(event.t_ns // 10**9, UTC).date()
    return {
        "t_us": event.t_ns // 1000,
        "device": device.hex[:16],
        "subject": device.subject,
        "session": session,
        "bundle": bundle,
        "kind": kind.name.lower(),
        "category": None if category is None else category.value,
        "keysym": event.a if is_key else None,
        "char": char,
        "key": "BackSpace" if is_key and event.a == 0xFF08 else None,
        "x": event.a if placed else None,
        "y": event.b if placed else None,
        "button": event.c if kind in (Kind.BUTTON_DOWN, Kind.BUTTON_UP) else None,
        "dx": event.c if kind is Kind.SCROLL else None,
        "dy": event.d if kind is Kind.SCROLL else None,
        "width": event.c if sized else None,
        "height": event.d if sized else None,
        "monitors": None,
        "scale": None,
        "group": None,
        "layout": None,
        "app": focus_app if is_key else event.app,
        "title": event.title,
        "day": day,
    }


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["t_us"], r["kind"]))


def mtimes(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


# -- the dataset ---------------------------------------------------------------------


def test_dataset_rows_equal_the_recorded_events(world: World) -> None:
    device = world.device()
    # Raw timing (typing_rhythm consented): the rows keep the events' own times.
    session, name, events = recorded_session(world, device, timing="raw")
    summary = world.ingest()
    assert summary.ok
    assert summary.bundles_ingested == 1
    assert summary.events_kept == len(events)
    expected = expected_rows(events, device, session, name)
    assert world.rows() == expected
    days = sorted(p.name for p in (world.out / "events").glob("day=*"))
    assert days == ["day=2026-12-02", "day=2026-12-03"]
    part = world.out / "events/day=2026-12-03" / f"device={device.hex[:16]}/part-{name}.parquet"
    assert part.is_file()
    assert oct(part.stat().st_mode & 0o777) == oct(0o600)
    assert pq.read_metadata(part).metadata == {
        b"cleartrace.dataset.version": b"2",
        b"cleartrace.dataset.table": b"events",
    }


def test_jsonl_holds_the_same_rows_as_parquet(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    lines = [
        json.loads(line)
        for path in sorted((world.out / "events").rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    table = pq.read_table(sorted((world.out / "events").rglob("*.parquet")), partitioning=None)
    parquet_rows = table.to_pylist()
    assert len(lines) == len(parquet_rows)
    for line, row in zip(
        sorted(lines, key=lambda r: (r["time"], r["kind"])),
        sorted(parquet_rows, key=lambda r: (r["time"], r["kind"])),
        strict=True,
    ):
        assert line["time"] == row["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert {k: v for k, v in line.items() if k != "time"} == {
            k: v for k, v in row.items() if k != "time"
        }
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"


def test_one_format_only(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest(formats=("jsonl",))
    assert list(world.out.rglob("*.jsonl"))
    assert not list(world.out.rglob("*.parquet"))


def test_rerun_writes_nothing_twice(world: World) -> None:
    recorded_session(world, world.device())
    first = world.ingest()
    before = mtimes(world.out)
    again = world.ingest()
    assert again.files_written == 0
    assert again.files_removed == 0
    assert again.bundles_unchanged == 1
    assert again.events_kept == first.events_kept
    after = mtimes(world.out)
    del before[str(world.out / MANIFEST)], after[str(world.out / MANIFEST)]
    assert after == before


def test_a_consent_change_elsewhere_rereads_but_does_not_rewrite(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    world.ingest()
    before = mtimes(world.out)
    device.act("recording.paused", at(120), until=None)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.bundles_unchanged == 0
    assert summary.files_written == 0
    assert {k: v for k, v in mtimes(world.out).items() if "part-" in k} == {
        k: v for k, v in before.items() if "part-" in k
    }


# -- later acts on the device remove rows on re-run ---------------------------------------


def test_later_deletion_removes_exactly_that_session(world: World) -> None:
    device = world.device()
    session, _, _ = recorded_session(world, device)
    other = secrets.token_hex(16)
    other_events = typed("abc", at(30))
    world.collector.upload(device, device.bundle(other_events, other))
    world.ingest()
    device.act("session.deleted", at(60), session=session)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.dropped["deleted"] == len(session_events())
    assert {r["session"] for r in world.rows()} == {other}
    assert len(world.rows()) == len(other_events)
    assert not any(session in p.read_text() for p in world.out.rglob("*.jsonl"))


def test_later_withdrawal_removes_that_categorys_rows_before_it(world: World) -> None:
    device = world.device()
    _, _, events = recorded_session(world, device)
    world.ingest()
    device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    keys = [e for e in events if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP)]
    assert summary.dropped["withdrawn"] == len(keys)
    rows = world.rows()
    assert len(rows) == len(events) - len(keys)
    assert all(r["category"] != "keys" for r in rows)
    assert TYPED_TEXT[0] not in {r["char"] for r in rows}
    assert not any(TYPED_TEXT[:2] in p.read_text() for p in world.out.rglob("*.jsonl"))


def test_withdrawing_everything_deletes_the_files(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    world.ingest()
    device.act("consent.withdrawn", at(60), categories=ALL, policy=POLICY)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    rows = world.rows()
    assert {r["kind"] for r in rows} == {"excluded_start", "excluded_end"}
    # The next day's events files, and every actions file (two days, two formats).
    assert summary.files_removed == 6
    assert world.actions() == []
    assert not list(world.out.glob("*/day=2026-12-03"))


def test_later_redaction_removes_rows_in_its_interval_and_categories(world: World) -> None:
    device = world.device()
    session, _, events = recorded_session(world, device, timing="raw")
    world.ingest()
    start, end = at(1.5), at(1.5) + timedelta(seconds=0.35)
    device.redact(session, start, end, events=4)
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    gone = [
        e
        for e in events
        if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP) and ns(start) <= e.t_ns <= ns(end)
    ]
    assert len(gone) == 8
    assert summary.dropped["redacted"] == len(gone)
    remaining = {r["t_us"] for r in world.rows()}
    assert remaining == {e.t_ns // 1000 for e in events} - {e.t_ns // 1000 for e in gone}


def test_event_outside_consent_is_dropped_and_reported(world: World) -> None:
    device = world.device()
    device.give(at(0), ["keys"])
    session = secrets.token_hex(16)
    events = [*typed("hi", at(1)), Event(ns(at(2)), Kind.MOVE, 1, 2)]
    device.act("recording.paused", at(3), until=None)
    events += typed("zz", at(4))
    name = world.collector.upload(device, device.bundle(events, session))
    summary = world.ingest()
    assert summary.dropped["violation"] == 5
    assert summary.violations == [
        {
            "bundle": name,
            "device": device.fingerprint,
            "session": session,
            "events": 5,
            "by_category": {"keys": 4, "mouse_move": 1},
        }
    ]
    assert len(world.rows()) == 4


# -- rejected input ------------------------------------------------------------------


def test_tampered_bundles_are_rejected_with_their_reason(world: World) -> None:
    good = world.device()
    recorded_session(world, good)
    victim = world.device()
    victim.give(at(0))
    raw = bytearray(victim.bundle(typed("x", at(1)), secrets.token_hex(16)))
    raw[len(raw) // 2] ^= 0x01
    in_place = world.collector.upload(victim, bytes(raw), name=hashlib.sha256(b"x").hexdigest())
    renamed = world.collector.upload(victim, bytes(raw))
    truncated = world.collector.upload(victim, bytes(raw[:200]))
    summary = world.ingest()
    assert rejected(summary) == {
        in_place: "name-mismatch",
        renamed: "bad-signature",
        truncated: "truncated",
    }
    assert not summary.ok
    assert summary.bundles_ingested == 1
    assert {r["device"] for r in world.rows()} == {good.hex[:16]}


def test_bundle_sealed_to_another_org_key_is_rejected(world: World, tmp_path: Path) -> None:
    other = generate(tmp_path / "other-keys")
    device = world.device()
    device.give(at(0))
    name = world.collector.upload(
        device, device.bundle(typed("x", at(1)), secrets.token_hex(16), org=other)
    )
    summary = world.ingest()
    assert rejected(summary) == {name: "wrong-org-key"}


def test_bundle_signed_by_another_key_than_its_header_names_is_rejected(world: World) -> None:
    device = world.device()
    device.give(at(0))
    raw = device.bundle(typed("x", at(1)), secrets.token_hex(16))
    impostor = Ed25519PrivateKey.generate()
    forged = raw[:-64] + impostor.sign(raw[:-64])
    name = world.collector.upload(device, forged)
    assert rejected(world.ingest()) == {name: "bad-signature"}


def test_ledger_rewritten_after_upload_rejects_the_device(world: World) -> None:
    device = world.device()
    _, first, _ = recorded_session(world, device)
    world.ingest()
    assert world.rows()
    # The device rewrites its last record and signs a continuation of the new history,
    # but the bundle claims to build on the head the collector witnessed.
    records = device.ledger.records()
    last = records[-1]
    rewritten = sign_record(
        make_record(
            seq=last["seq"],
            prev=last["prev"],
            kind="session.ended",
            fields={"session": secrets.token_hex(16)},
            now=at(17),
        ),
        device.key,
    )
    follow = sign_record(
        make_record(
            seq=last["seq"] + 1,
            prev=record_hash(rewritten),
            kind="recording.paused",
            fields={"until": None},
            now=at(18),
        ),
        device.key,
    )
    second = world.collector.upload(device, device.bundle(segment=[follow]))
    summary = world.ingest()
    assert rejected(summary) == {first: "ledger-rewritten", second: "ledger-rewritten"}
    assert summary.devices_rejected == {device.fingerprint: "ledger-rewritten"}
    assert world.rows() == []  # what can no longer be proven leaves the dataset


def test_ledger_record_signed_by_another_key_rejects_the_device(world: World) -> None:
    device = world.device()
    device.give(at(0))
    records = device.ledger.records()
    forged = sign_record(
        make_record(
            seq=2,
            prev=record_hash(records[-1]),
            kind="consent.given",
            fields={"categories": ["keys"], "policy": POLICY},
            now=at(1),
        ),
        Ed25519PrivateKey.generate(),
    )
    name = world.collector.upload(device, device.bundle(segment=[*records, forged]))
    assert rejected(world.ingest()) == {name: "ledger-bad-signature"}


def test_an_approval_signed_after_the_session_was_deleted_rejects_the_device(
    world: World,
) -> None:
    device = world.device()
    device.give(at(0))
    session = secrets.token_hex(16)
    device.act("session.started", at(0.5), session=session)
    device.act("session.ended", at(2), session=session)
    device.act("session.deleted", at(3), session=session)
    # Signed by the device key, yet a deleted session's key is gone: this approval is
    # forged (or the device is broken), and must not bring the session's rows back.
    device.act("session.approved", at(4), session=session, by="person")
    name = world.collector.upload(device, device.bundle(typed("x", at(1)), session))
    summary = world.ingest()
    assert rejected(summary) == {name: "ledger-after-deletion"}
    assert summary.devices_rejected == {device.fingerprint: "ledger-after-deletion"}
    assert world.rows() == []


def test_missing_segment_is_a_gap(world: World) -> None:
    device = world.device()
    device.give(at(0))
    device.bundle()  # built and "lost": never stored
    device.act("recording.paused", at(1), until=None)
    name = world.collector.upload(device, device.bundle())
    assert rejected(world.ingest()) == {name: "ledger-gap"}


def test_bundles_ending_before_the_witnessed_head_are_truncated(world: World) -> None:
    device = world.device()
    device.give(at(0))
    name = world.collector.upload(device, device.bundle())
    head = {"device": device.fingerprint, "seq": 5, "hash": "3" * 64, "bundle": name, "time": "x"}
    world.collector.store.put(head_key(device.hex), json.dumps(head).encode())
    assert rejected(world.ingest()) == {name: "ledger-truncated"}


def test_a_dataset_is_only_updated_with_the_key_it_was_built_with(
    world: World, tmp_path: Path
) -> None:
    recorded_session(world, world.device())
    world.ingest()
    generate(tmp_path / "other")
    with pytest.raises(UsageError, match="organisation key"):
        ingest(str(world.source), tmp_path / "other", world.out)


def test_bundles_gone_from_the_source_leave_the_dataset(world: World) -> None:
    device = world.device()
    _, name, _ = recorded_session(world, device)
    world.ingest()
    (world.source / bundle_key(name)).unlink()
    summary = world.ingest()
    assert world.rows() == []
    assert world.actions() == []
    assert summary.files_removed == 8  # both tables, two days, two formats


# -- S3 ------------------------------------------------------------------------------


def test_ingest_from_s3(world: World, s3_endpoint: str, bucket: str) -> None:
    world.collector = Collector(S3Store(bucket, "org/a", endpoint_url=s3_endpoint))
    device = world.device()
    session, name, events = recorded_session(world, device, timing="raw")
    summary = ingest(f"s3://{bucket}/org/a", world.keys, world.out, endpoint_url=s3_endpoint)
    assert summary.ok
    assert world.rows() == expected_rows(events, device, session, name)


# -- the command ---------------------------------------------------------------------


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), cli._add)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_command_prints_a_summary_and_exits_1_on_rejections(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    device = world.device()
    recorded_session(world, device)
    argv = ["ingest", "--from", str(world.source), "--keys", str(world.keys)]
    argv += ["--out", str(world.out), "--quiet"]
    assert run_command([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bundles"] == {"read": 1, "ingested": 1, "unchanged": 0, "rejected": 0}
    assert summary["events"]["kept"] == len(session_events())
    world.collector.upload(device, b"CTBUNDLE broken")
    assert run_command([*argv, "--format", "parquet"]) == 1
    text = capsys.readouterr().out
    assert "bundles: 2 read, 1 ingested (1 unchanged), 1 rejected" in text
    assert "malformed" in text or "truncated" in text


def test_no_typed_text_or_title_reaches_logs_or_summary(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    device = world.device()
    recorded_session(world, device)
    world.collector.upload(device, b"CTBUNDLE broken")
    argv = ["ingest", "--from", str(world.source), "--keys", str(world.keys)]
    run_command([*argv, "--out", str(world.out), "--quiet"])
    run_command([*argv, "--out", str(world.out), "--quiet", "--json"])
    seen = caplog.text + capsys.readouterr().out + (world.out / MANIFEST).read_text()
    assert TYPED_TEXT not in seen
    assert WINDOW_TITLE not in seen


def test_one_ingest_at_a_time_per_dataset(world: World) -> None:
    recorded_session(world, world.device())
    holder = Dataset(world.out, world.org.bundle_public.fingerprint)
    with holder.locked(), pytest.raises(UsageError, match="another ingest"):
        world.ingest()
    assert world.ingest().ok


def test_files_an_interrupted_run_left_unlisted_are_removed(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    (listed,) = world.out.glob("events/day=2026-12-02/device=*/*.parquet")
    stray = listed.with_name("part-" + "9" * 64 + ".parquet")  # written, never in the manifest
    stray.write_bytes(listed.read_bytes())
    summary = world.ingest()
    assert not stray.exists()
    assert listed.exists()
    assert summary.files_removed == 1


def test_an_unreadable_head_rejects_its_device_only(world: World) -> None:
    good, bad = world.device(), world.device()
    recorded_session(world, good)
    world.ingest()
    good_rows = len(world.rows())
    bad.give(at(0))
    name = world.collector.upload(bad, bad.bundle())
    world.collector.store.put(head_key(bad.hex), b"{not json")
    summary = world.ingest()
    assert rejected(summary) == {name: "head-unreadable"}
    assert len(world.rows()) == good_rows > 0


def test_dataset_directories_are_private(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    for directory in [world.out, *world.out.rglob("*")]:
        if directory.is_dir():
            assert oct(directory.stat().st_mode & 0o777) == oct(0o700), directory


def witnessed_by(world: World, device: Device, key: Ed25519PrivateKey, **change: Any) -> None:
    """Rewrite the device's head file signed by `key` (after `change`)."""
    doc = json.loads(world.collector.store.get(head_key(device.hex)))
    doc = {**{k: v for k, v in doc.items() if k != "sig"}, **change}
    world.collector.store.put(head_key(device.hex), sign_head(doc, key))


def test_with_a_witness_key_heads_must_be_signed_by_it(world: World, tmp_path: Path) -> None:
    collector = tmp_path / "collector"
    collector.mkdir()
    witness = load_or_create(collector)
    honest, forged, missing = world.device(), world.device(), world.device()
    names = {}
    for device in (honest, forged, missing):
        device.give(at(0))
        names[device.hex] = world.collector.upload(device, device.bundle())
    witnessed_by(world, honest, witness)
    witnessed_by(world, forged, Ed25519PrivateKey.generate())  # someone else's key
    world.collector.store.put(head_key(missing.hex), b"")
    (world.source / head_key(missing.hex)).unlink()
    summary = ingest(
        str(world.source), world.keys, world.out, witness_key=collector / "witness.pub"
    )
    assert rejected(summary) == {
        names[forged.hex]: "head-forged",
        names[missing.hex]: "unwitnessed",
    }
    # Without the key the same store is taken at its word.
    assert rejected(world.ingest()) == {}
