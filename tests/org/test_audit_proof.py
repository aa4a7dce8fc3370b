"""The dataset coverage proof (org/audit_proof.py) on real signed ledgers and a real
ingest: a clean dataset proves clean, whatever the ledger withdrew, deleted,
paused or redacted; then the dataset is changed as someone with write access
to it would (Parquet files rewritten, an old file put back) and every row that
contradicts the ledger is named with its device, session, bundle, row and
the ledger record it contradicts."""

from __future__ import annotations

import secrets
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleartrace.org.audit_proof import prove
from tests.support.dataset_tamper import inject
from tests.support.ingest_world import (
    ALL,
    POLICY,
    Device,
    World,
    at,
    recorded_session,
    typed,
    utc_us,
)


def upload(world: World, device: Device, raw: bytes, when: float) -> str:
    """Store a bundle, and ledger its acknowledgement as the device's uploader does."""
    name = world.collector.upload(device, raw)
    seq, digest = device.witnessed
    device.act("bundle.uploaded", at(when), bundle=name, witnessed={"seq": seq, "hash": digest})
    return name


def ledgers(world: World) -> dict[str, list[dict[str, Any]]]:
    """Each device's ledger up to the head the collector witnessed (what the audit verifies)."""
    return {d.fingerprint: d.ledger.records()[: d.witnessed[0]] for d in world.devices}


def snapshot(world: World) -> dict[str, bytes]:
    return {
        p.relative_to(world.out).as_posix(): p.read_bytes()
        for p in (world.out / "events").rglob("part-*.parquet")
    }


def restore(world: World, files: dict[str, bytes]) -> None:
    """Put back files a later ingest rewrote or removed: rows kept that should be gone."""
    for rel, raw in files.items():
        path = world.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


def one_file(world: World, session: str) -> Path:
    for path in sorted((world.out / "events").rglob("part-*.parquet")):
        if session in pq.read_table(path).column("session").to_pylist():
            return path
    raise AssertionError("no file holds the session")


@pytest.fixture
def device(world: World) -> Device:
    return world.device()


def test_a_clean_ingest_proves_clean_after_every_kind_of_later_act(
    world: World, device: Device
) -> None:
    session, _, events = recorded_session(world, device, timing="raw")
    other = secrets.token_hex(16)
    upload(world, device, device.bundle(typed("abc", at(30)), other), 32)
    device.act("recording.paused", at(40), until=None)
    device.act("recording.resumed", at(41), reason="person")
    device.act("consent.withdrawn", at(60), categories=["mouse_move"], policy=POLICY)
    device.act("session.deleted", at(61), session=other)
    device.act(
        "session.redacted",
        at(62),
        session=session,
        method="time",
        events=4,
        categories=["keys"],
        interval={"start": utc_us(at(1.5)), "end": utc_us(at(1.5) + timedelta(seconds=0.35))},
    )
    world.collector.upload(device, device.bundle())
    summary = world.ingest()
    assert summary.dropped["deleted"] == 6
    assert summary.dropped["redacted"] == 8
    result = prove(world.out, ledgers(world))
    assert result.violations == []
    figures = result.as_json()
    mine = figures["devices"][device.fingerprint]
    assert mine["violations"] == 0
    # Every events row and every actions row, once per format.
    actions = len(world.actions())
    assert actions
    assert mine["rows"] == mine["rows_in_consent"] == 2 * (len(events) - 8 - 2 + actions)
    assert figures["totals"]["rows"] == mine["rows"]
    assert figures["totals"]["violations"] == 0


def test_a_row_injected_outside_consent_names_the_pause_it_contradicts(
    world: World, device: Device
) -> None:
    session, name, _ = recorded_session(world, device)
    paused = device.act("recording.paused", at(18), until=None)
    world.collector.upload(device, device.bundle())
    world.ingest()
    path = one_file(world, session)
    row = inject(path, time=at(19))
    result = prove(world.out, ledgers(world))
    assert result.violations == [
        {
            "device": device.fingerprint,
            "session": session,
            "bundle": name,
            "file": path.relative_to(world.out).as_posix(),
            "row": row,
            "time": utc_us(at(19)),
            "category": "keys",
            "rule": "outside-consent",
            "record": paused["seq"],
        }
    ]
    assert result.as_json()["devices"][device.fingerprint]["violations"] == 1


def test_a_row_before_any_consent_names_no_record(world: World, device: Device) -> None:
    session, _, _ = recorded_session(world, device)
    world.ingest()
    inject(one_file(world, session), time=at(-10))
    (violation,) = prove(world.out, ledgers(world)).violations
    assert violation["rule"] == "outside-consent"
    assert violation["record"] is None


def test_rows_of_a_withdrawn_category_left_in_are_named_with_the_withdrawal(
    world: World, device: Device
) -> None:
    session, name, events = recorded_session(world, device)
    world.ingest()
    before = snapshot(world)
    withdrawn = device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert prove(world.out, ledgers(world)).violations == []
    restore(world, before)
    result = prove(world.out, ledgers(world))
    keys = [e for e in events if e.kind.name.startswith("KEY")]
    assert len(result.violations) == len(keys)
    assert {(v["rule"], v["record"], v["category"]) for v in result.violations} == {
        ("withdrawn", withdrawn["seq"], "keys")
    }
    assert {(v["device"], v["session"], v["bundle"]) for v in result.violations} == {
        (device.fingerprint, session, name)
    }
    assert all(isinstance(v["row"], int) for v in result.violations)


def test_a_row_of_a_deleted_session_is_named_with_the_deletion(
    world: World, device: Device
) -> None:
    session, name, _ = recorded_session(world, device)
    world.ingest()
    before = snapshot(world)
    deleted = device.act("session.deleted", at(60), session=session)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert not list(world.out.rglob("part-*.parquet"))
    path = world.out / next(iter(sorted(before)))
    restore(world, {next(iter(sorted(before))): before[next(iter(sorted(before)))]})
    result = prove(world.out, ledgers(world))
    rows = pq.read_table(path).num_rows
    assert len(result.violations) == rows
    assert {(v["rule"], v["record"], v["session"], v["bundle"]) for v in result.violations} == {
        ("deleted", deleted["seq"], session, name)
    }


def test_a_row_inside_a_later_redaction_is_named_with_the_redaction(
    world: World, device: Device
) -> None:
    # Raw timing (typing_rhythm consented): the redaction is judged on exact times.
    device.give(at(0), [*ALL, "typing_rhythm"])
    session = secrets.token_hex(16)
    raw = device.bundle(typed("hunter2", at(1.5)), session, timing="raw")
    name = upload(world, device, raw, 20)
    world.ingest()
    before = snapshot(world)
    redacted = device.act(
        "session.redacted",
        at(70),
        session=session,
        method="time",
        events=4,
        categories=["keys"],
        interval={"start": utc_us(at(1.5)), "end": utc_us(at(1.5) + timedelta(seconds=0.15))},
    )
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert prove(world.out, ledgers(world)).violations == []
    restore(world, before)
    result = prove(world.out, ledgers(world))
    assert len(result.violations) == 4  # two keys, down and up
    assert {(v["rule"], v["record"], v["session"], v["bundle"]) for v in result.violations} == {
        ("redacted", redacted["seq"], session, name)
    }
    assert sorted(v["row"] for v in result.violations) == [0, 1, 2, 3]


def test_a_row_of_a_device_without_a_ledger_and_a_jsonl_row_are_checked(
    world: World, device: Device, tmp_path: Path
) -> None:
    session, _, _ = recorded_session(world, device)
    world.ingest()
    result = prove(world.out, {})
    assert result.violations
    assert {v["rule"] for v in result.violations} == {"no-ledger"}
    assert {v["record"] for v in result.violations} == {None}
    # JSON Lines files are proven as well: an injected line outside consent.
    jsonl = sorted((world.out / "events").rglob("part-*.jsonl"))[0]
    lines = jsonl.read_text().splitlines()
    first = next(line for line in lines if '"key_down"' in line)
    early = first.replace(first[9:36], "2026-12-02T23:00:00.000000Z")
    jsonl.write_text("\n".join([*lines, early]) + "\n")
    (violation,) = prove(world.out, ledgers(world)).violations
    assert violation["file"] == jsonl.relative_to(world.out).as_posix()
    assert violation["row"] == len(lines)
    assert violation["time"] == "2026-12-02T23:00:00.000000Z"
    assert violation["session"] == session


def test_an_empty_or_missing_dataset_is_a_clear_error(world: World, tmp_path: Path) -> None:
    from cleartrace.errors import UsageError

    with pytest.raises(UsageError, match="not a dataset"):
        prove(tmp_path / "nowhere", {})
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prove(empty, {}).as_json()["totals"]["rows"] == 0
    shutil.rmtree(empty)


def test_a_window_title_left_after_its_withdrawal_and_a_stray_field_are_named(
    world: World, device: Device
) -> None:
    session, _, _ = recorded_session(world, device)
    world.ingest()
    before = snapshot(world)
    withdrawn = device.act("consent.withdrawn", at(60), categories=["window_titles"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert prove(world.out, ledgers(world)).violations == []
    restore(world, before)
    path = one_file(world, session)
    table = pq.read_table(path)
    rows = table.to_pylist()
    stray = next(i for i, r in enumerate(rows) if r["kind"] == "move")
    rows[stray]["app"] = "gedit"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    found = {
        (v["row"], v["rule"], v["category"], v["record"])
        for v in prove(world.out, ledgers(world)).violations
    }
    focus = next(i for i, r in enumerate(rows) if r["kind"] == "focus")
    assert found == {
        (focus, "withdrawn", "window_titles", withdrawn["seq"]),
        (stray, "field-outside-kind", "app_focus", None),
    }


def test_the_app_on_a_key_row_is_held_to_app_focus_rules(world: World, device: Device) -> None:
    session, _, _ = recorded_session(world, device)
    world.ingest()
    before = snapshot(world)
    assert prove(world.out, ledgers(world)).violations == []
    withdrawn = device.act("consent.withdrawn", at(60), categories=["app_focus"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert prove(world.out, ledgers(world)).violations == []
    path = one_file(world, session)
    kept = pq.read_table(path).to_pylist()
    assert {r["app"] for r in kept if r["kind"] == "key_down"} == {None}
    # The key rows of before, naming the app after it was withdrawn: each one a
    # violation of app_focus, not a field outside its kind.
    restore(world, before)
    rows = pq.read_table(path).to_pylist()
    rel = path.relative_to(world.out).as_posix()
    found = {
        (v["row"], v["rule"], v["category"], v["record"])
        for v in prove(world.out, ledgers(world)).violations
        if v["file"] == rel
    }
    keys = {i for i, r in enumerate(rows) if r["kind"].startswith("key_")}
    focus = next(i for i, r in enumerate(rows) if r["kind"] == "focus")
    assert found == {(i, "withdrawn", "app_focus", withdrawn["seq"]) for i in keys | {focus}}


def test_rows_out_of_time_order_are_each_judged_at_their_own_time(
    world: World, device: Device
) -> None:
    session, _, _ = recorded_session(world, device)
    paused = device.act("recording.paused", at(18), until=None)
    world.collector.upload(device, device.bundle())
    world.ingest()
    path = one_file(world, session)
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows.insert(0, {**rows[1], "time": at(19)})  # a row of the pause, first in the file
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    (violation,) = prove(world.out, ledgers(world)).violations
    assert (violation["row"], violation["record"]) == (0, paused["seq"])


def test_an_unreadable_data_file_is_named_and_the_others_still_proven(
    world: World, device: Device
) -> None:
    session, _, _ = recorded_session(world, device)
    world.ingest()
    path = one_file(world, session)
    path.write_bytes(b"not parquet at all")
    result = prove(world.out, ledgers(world))
    (violation,) = result.violations
    assert violation["rule"] == "unreadable"
    assert violation["file"] == path.relative_to(world.out).as_posix()
    figures = result.as_json()["totals"]
    assert figures["unreadable_files"] == 1
    assert figures["violations"] == 1
    assert figures["rows"] > 0


def test_a_row_of_another_device_in_a_file_is_held_to_that_devices_ledger(
    world: World, device: Device
) -> None:
    session, _, _ = recorded_session(world, device)
    other = world.device()
    other_session, _, _ = recorded_session(world, other)
    paused = other.act("recording.paused", at(18), until=None)
    world.collector.upload(other, other.bundle())
    world.ingest()
    theirs = pq.read_table(one_file(world, other_session)).to_pylist()[0]
    path = one_file(world, session)
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows.insert(2, {**theirs, "time": at(19)})
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    (violation,) = prove(world.out, ledgers(world)).violations
    assert (violation["device"], violation["session"], violation["row"]) == (
        other.fingerprint,
        other_session,
        2,
    )
    assert violation["record"] == paused["seq"]
