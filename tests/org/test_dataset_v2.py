"""Dataset version 2 on real ingests: the events/ and actions/ tables, key rows
that say which application they were typed into, the context kinds' columns,
and a version-1 dataset directory refused with the fix."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from cleartrace.errors import UsageError
from cleartrace.events import Event, Kind
from cleartrace.org.dataset import MANIFEST
from cleartrace.org.rows import SCHEMA, rows_table
from cleartrace.upload.events_arrow import decode_events, encode_events
from tests.support.ingest_world import POLICY, World, at, ns, recorded_session, typed


def test_both_tables_are_hive_partitioned_under_their_own_directory(world: World) -> None:
    device = world.device()
    _, name, _ = recorded_session(world, device)
    summary = world.ingest()
    part = f"day=2026-12-02/device={device.hex[:16]}/part-{name}"
    for table in ("events", "actions"):
        for fmt in ("parquet", "jsonl"):
            path = world.out / table / f"{part}.{fmt}"
            assert path.is_file(), path
            assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert not list(world.out.glob("day=*"))
    meta = pq.read_metadata(world.out / "events" / f"{part}.parquet").metadata
    assert meta[b"cleartrace.dataset.version"] == b"2"
    assert meta[b"cleartrace.dataset.table"] == b"events"
    manifest = json.loads((world.out / MANIFEST).read_text())
    assert manifest["v"] == 2
    assert manifest["bundles"][name]["actions"] == len(world.actions()) >= 1
    assert summary.as_dict()["actions"] == {"kept": len(world.actions())}
    assert sorted(f.split("/")[0] for f in manifest["bundles"][name]["files"]) == [
        "actions",
        "actions",
        "actions",
        "actions",
        "events",
        "events",
        "events",
        "events",
    ]


def test_key_rows_carry_the_app_of_the_latest_kept_focus(world: World) -> None:
    device = world.device()
    device.give(at(0))
    session = secrets.token_hex(16)
    events = [
        *typed("ab", at(0.5)),  # before any focus: no app
        Event(ns(at(1)), Kind.FOCUS, 10, 20, 800, 600, app="gedit", title="t"),
        *typed("cd", at(1.5)),
        Event(ns(at(2)), Kind.FOCUS, 0, 0, 0, 0, app="xterm", title=None),
        *typed("e", at(2.5)),
    ]
    world.collector.upload(device, device.bundle(events, session))
    world.ingest()
    keys = [(r["char"], r["app"]) for r in world.rows() if r["kind"] == "key_down"]
    assert keys == [("a", None), ("b", None), ("c", "gedit"), ("d", "gedit"), ("e", "xterm")]
    focus = [r for r in world.rows() if r["kind"] == "focus"]
    assert [(r["x"], r["y"], r["width"], r["height"]) for r in focus] == [
        (10, 20, 800, 600),
        (0, 0, 0, 0),
    ]
    moves = [r for r in world.rows() if r["kind"] == "key_up"]
    assert {r["width"] for r in moves} == {None}


def test_a_key_row_has_no_app_where_app_focus_is_not_consented(world: World) -> None:
    device = world.device()
    device.give(at(0))
    session = secrets.token_hex(16)
    events = [
        Event(ns(at(1)), Kind.FOCUS, app="gedit", title="t"),
        *typed("ab", at(1.5)),
        *typed("cd", at(3)),
    ]
    # app_focus refused between the two runs: the focus stays, the later keys
    # may not say which application they went to.
    device.act("consent.refused", at(2), categories=["app_focus"], policy=POLICY)
    world.collector.upload(device, device.bundle(events, session))
    world.ingest()
    keys = [(r["char"], r["app"]) for r in world.rows() if r["kind"] == "key_down"]
    assert keys == [("a", "gedit"), ("b", "gedit"), ("c", None), ("d", None)]


def test_a_withdrawn_focus_takes_its_app_off_the_key_rows(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    world.ingest()
    assert {r["app"] for r in world.rows() if r["kind"] == "key_down"} == {"gedit"}
    device.act("consent.withdrawn", at(60), categories=["app_focus"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert {r["app"] for r in world.rows()} == {None}
    assert not any("gedit" in p.read_text() for p in world.out.rglob("*.jsonl"))


def test_context_kinds_have_their_own_columns() -> None:
    t = ns(at(1))
    events = decode_events(
        encode_events(
            [
                Event(t, Kind.SCREEN, 2, 3840, 1080, 125),
                Event(t, Kind.MONITOR, 0, 0, 1920, 1080),
                Event(t, Kind.MONITOR, 1920, 0, 1920, 1080),
                Event(t + 1, Kind.LAYOUT, 1, app="de"),
            ],
            0,
        )
    )
    rows = rows_table(events, device="sha256:" + "c" * 64, subject="s", session="x", bundle="b")
    got = rows.cast(SCHEMA).to_pylist()
    columns = ("x", "y", "width", "height", "monitors", "scale", "group", "layout", "app")
    assert [tuple(r[c] for c in columns) for r in got] == [
        (None, None, 3840, 1080, 2, 125, None, None, None),
        (0, 0, 1920, 1080, None, None, None, None, None),
        (1920, 0, 1920, 1080, None, None, None, None, None),
        (None, None, None, None, None, None, 1, "de", None),
    ]
    assert [r["category"] for r in got] == ["clicks", "clicks", "clicks", "keys"]


def test_a_version_1_dataset_is_refused_with_the_fix(world: World) -> None:
    recorded_session(world, world.device())
    manifest = world.out / MANIFEST
    manifest.parent.mkdir(parents=True)
    fingerprint = world.org.bundle_public.fingerprint
    old = {"v": 1, "type": "cleartrace-dataset-manifest", "org_key": fingerprint, "bundles": {}}
    manifest.write_text(json.dumps(old))
    with pytest.raises(UsageError) as refused:
        world.ingest()
    message = str(refused.value)
    assert "version 1" in message
    assert "new directory" in message
    assert "--heads-from" in message
    assert json.loads(manifest.read_text()) == old


def test_unlisted_files_of_either_table_are_swept(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    strays = []
    for table in ("events", "actions"):
        (listed, *_) = sorted((world.out / table).rglob("*.parquet"))
        stray = listed.with_name("part-" + "9" * 64 + ".parquet")
        stray.write_bytes(listed.read_bytes())
        strays.append(stray)
    summary = world.ingest()
    assert summary.files_removed == 2
    assert not any(s.exists() for s in strays)


def test_features_files_type_every_column(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    for table in ("events", "actions"):
        path = world.out / "_cleartrace" / f"{table}.features.json"
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        features = json.loads(path.read_text())
        parquet = pq.read_schema(sorted((world.out / table).rglob("*.parquet"))[0])
        assert list(features) == parquet.names
        assert {f["_type"] for f in features.values()} == {"Value"}
        assert "null" not in {f["dtype"] for f in features.values()}
    assert json.loads((world.out / "_cleartrace/events.features.json").read_text())["time"] == {
        "dtype": "timestamp[us, tz=UTC]",
        "_type": "Value",
    }


def test_each_action_lands_in_the_day_it_started(world: World) -> None:
    device = world.device()
    device.give(at(0))
    midnight = datetime(2026, 12, 3, tzinfo=UTC)

    def t(seconds: float) -> int:
        return ns(midnight + timedelta(seconds=seconds))

    events = [
        Event(ns(at(1)), Kind.FOCUS, 0, 0, 100, 100, app="gedit", title="n"),
        Event(t(-0.6), Kind.KEY_DOWN, ord("a")),
        Event(t(-0.55), Kind.KEY_UP, ord("a")),
        # A scroll among a typing run's keys comes after the run's actions: the
        # actions are not in time order around midnight.
        Event(t(-0.4), Kind.SCROLL, 5, 5, 0, 1),
        Event(t(0.2), Kind.KEY_DOWN, 0xFFE3),
        Event(t(0.3), Kind.KEY_DOWN, ord("s")),
        Event(t(0.35), Kind.KEY_UP, ord("s")),
        Event(t(0.4), Kind.KEY_UP, 0xFFE3),
    ]
    world.collector.upload(device, device.bundle(events, secrets.token_hex(16)))
    world.ingest()
    found = set()
    for path in (world.out / "actions").rglob("*.parquet"):
        day = path.relative_to(world.out).parts[1]
        for row in pq.read_table(path, columns=["time", "action"]).to_pylist():
            assert day == f"day={row['time'].date().isoformat()}"
            found.add(row["action"])
    assert found == {"type", "scroll", "hotkey"}
