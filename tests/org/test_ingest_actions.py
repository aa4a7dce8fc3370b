"""The actions table on real ingests: each action's lineage (bundle, events,
consent), and every later act on the device — withdrawal, deletion,
redaction, subject erasure — dropping actions exactly as it drops events;
the audit holding action rows to the ledger."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cleartrace.events import Event, Kind
from cleartrace.org.audit_proof import prove
from cleartrace.org.subjects import erase
from tests.support.ingest_world import (
    POLICY,
    TYPED_TEXT,
    World,
    at,
    ns,
    recorded_session,
    session_events,
    typed,
    utc_us,
)

#: Positions in `session_events()`: the focus, then the typed text's key events.
TYPED = TYPED_TEXT + "é€"
FIRST_KEY, LAST_KEY = 1, 2 * len(TYPED)


def ledgers(world: World) -> dict[str, list[dict[str, Any]]]:
    return {d.fingerprint: d.ledger.records()[: d.witnessed[0]] for d in world.devices}


def kinds(world: World) -> list[str]:
    return [a["action"] for a in world.actions()]


def typing(world: World) -> dict[str, Any]:
    (action,) = [a for a in world.actions() if a["action"] == "type" and a["text"] == TYPED]
    return action


def test_actions_carry_their_bundle_events_and_consent(world: World) -> None:
    device = world.device()
    session, name, _ = recorded_session(world, device)
    world.ingest()
    given = device.ledger.records()[0]
    assert given["kind"] == "consent.given"
    action = typing(world)
    assert action["device"] == device.hex[:16]
    assert action["subject"] == device.subject
    assert action["session"] == session
    assert action["bundle"] == name
    assert action["app"] == "gedit"
    assert action["category"] == "keys"
    assert action["consent_seq"] == given["seq"]
    assert (action["first_event"], action["last_event"]) == (FIRST_KEY, LAST_KEY)
    (click,) = [a for a in world.actions() if a["action"] == "click"]
    assert (click["x"], click["y"], click["category"]) == (640, 400, "clicks")
    assert {a["consent_seq"] for a in world.actions()} == {given["seq"]}


def test_consent_seq_is_the_consent_in_force_at_the_action(world: World) -> None:
    device = world.device()
    device.give(at(0))
    device.act("consent.withdrawn", at(0.2), categories=["keys"], policy=POLICY)
    again = device.act("consent.given", at(0.3), categories=["keys"], policy=POLICY)
    session = secrets.token_hex(16)
    world.collector.upload(device, device.bundle(session_events(), session))
    world.ingest()
    assert typing(world)["consent_seq"] == again["seq"]
    (click,) = [a for a in world.actions() if a["action"] == "click"]
    assert click["consent_seq"] == 1


def test_jsonl_holds_the_same_actions_as_parquet(world: World) -> None:
    recorded_session(world, world.device())
    world.ingest()
    lines = [
        json.loads(line)
        for path in sorted((world.out / "actions").rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    parquet = pq.read_table(sorted((world.out / "actions").rglob("*.parquet")), partitioning=None)
    rows = parquet.to_pylist()
    assert len(lines) == len(rows) >= 4
    for line, row in zip(lines, rows, strict=True):
        for column in ("time", "end"):
            assert line[column] == row[column].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert {k: v for k, v in line.items() if k not in ("time", "end")} == {
            k: v for k, v in row.items() if k not in ("time", "end")
        }


def test_withdrawal_drops_that_categorys_actions(world: World) -> None:
    device = world.device()
    recorded_session(world, device)
    world.ingest()
    assert "type" in kinds(world)
    device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert {a["category"] for a in world.actions()} == {"clicks", "scroll"}
    assert not any(TYPED_TEXT in p.read_text() for p in world.out.rglob("*.jsonl"))


def test_deletion_drops_the_sessions_actions(world: World) -> None:
    device = world.device()
    session, _, _ = recorded_session(world, device)
    other = secrets.token_hex(16)
    world.collector.upload(device, device.bundle(typed("abc", at(30)), other))
    world.ingest()
    device.act("session.deleted", at(60), session=session)
    world.collector.upload(device, device.bundle())
    world.ingest()
    assert [(a["session"], a["action"], a["text"]) for a in world.actions()] == [
        (other, "type", "abc")
    ]
    assert not any(session in p.read_text() for p in (world.out / "actions").rglob("*.jsonl"))


def test_redaction_drops_the_actions_of_its_events(world: World) -> None:
    device = world.device()
    session, _, events = recorded_session(world, device, timing="raw")
    world.ingest()
    start, end = at(1.5), at(1.5) + timedelta(seconds=0.35)
    device.redact(session, start, end, events=8)
    world.collector.upload(device, device.bundle())
    world.ingest()
    gone = [i for i, e in enumerate(events) if ns(start) <= e.t_ns <= ns(end) and i >= FIRST_KEY]
    assert len(gone) == 8
    for action in world.actions():
        assert action["last_event"] < gone[0] or action["first_event"] > gone[-1]
    assert TYPED not in {a["text"] for a in world.actions()}
    assert TYPED[4:] in {a["text"] for a in world.actions()}


def test_erasing_a_subject_drops_its_actions(world: World) -> None:
    ann, bob = world.device(), world.device()
    recorded_session(world, ann)
    recorded_session(world, bob)
    world.ingest()
    assert {a["subject"] for a in world.actions()} == {ann.subject, bob.subject}
    erase(ann.subject, str(world.source), world.keys, world.out)
    assert {a["subject"] for a in world.actions()} == {bob.subject}
    world.ingest()
    assert {a["subject"] for a in world.actions()} == {bob.subject}


def _put_back(world: World, saved: dict[str, bytes]) -> None:
    for rel, raw in saved.items():
        path = world.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


def _actions_files(world: World) -> dict[str, bytes]:
    return {
        p.relative_to(world.out).as_posix(): p.read_bytes()
        for p in (world.out / "actions").rglob("part-*")
    }


def test_the_audit_holds_actions_to_the_ledger(world: World) -> None:
    device = world.device()
    session, _, _ = recorded_session(world, device)
    other = secrets.token_hex(16)
    world.collector.upload(device, device.bundle(typed("abc", at(30)), other))
    world.ingest()
    assert prove(world.out, ledgers(world)).ok
    saved = _actions_files(world)
    withdrawn = device.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    deleted = device.act("session.deleted", at(61), session=other)
    world.collector.upload(device, device.bundle())
    world.ingest()
    result = prove(world.out, ledgers(world))
    assert result.ok, result.violations[:3]
    # Someone with write access puts the old actions files back.
    _put_back(world, saved)
    found = {
        (v["session"], v["rule"], v["category"], v["record"])
        for v in prove(world.out, ledgers(world)).violations
        if v["file"].startswith("actions/")
    }
    assert found == {
        (other, "deleted", "keys", deleted["seq"]),
        (session, "withdrawn", "keys", withdrawn["seq"]),
    }


def _typed_in_gedit_then_app_focus_refused(world: World) -> None:
    """ "ab" typed in gedit's window, app_focus refused, "cd" typed: ingested."""
    device = world.device()
    device.give(at(0))
    session = secrets.token_hex(16)
    events = [
        Event(ns(at(1)), Kind.FOCUS, 5, 6, 700, 500, app="gedit", title="notes"),
        *typed("ab", at(1.5)),
        *typed("cd", at(3)),
    ]
    device.act("consent.refused", at(2), categories=["app_focus"], policy=POLICY)
    world.collector.upload(device, device.bundle(events, session))
    world.ingest()


def test_an_action_names_its_window_only_where_app_focus_is_consented(world: World) -> None:
    _typed_in_gedit_then_app_focus_refused(world)
    window = ("app", "title", "window_x", "window_y", "window_width", "window_height")
    assert [(a["text"], *(a[c] for c in window)) for a in world.actions()] == [
        ("ab", "gedit", "notes", 5, 6, 700, 500),
        ("cd", None, None, None, None, None, None),
    ]
    assert prove(world.out, ledgers(world)).ok


def test_a_redaction_inside_a_typed_run_proves_clean(world: World) -> None:
    device = world.device()
    session, name, _ = recorded_session(world, device, timing="raw")
    # Acknowledged, so the audit knows the bundle was built before the redaction.
    seq, digest = device.witnessed
    device.act("bundle.uploaded", at(18), bundle=name, witnessed={"seq": seq, "hash": digest})
    start, end = at(1.5) + timedelta(seconds=0.3), at(1.5) + timedelta(seconds=0.45)
    device.redact(session, start, end, events=4)
    world.collector.upload(device, device.bundle())
    world.ingest()
    texts = [a["text"] for a in world.actions() if a["action"] == "type"]
    assert TYPED[:3] + TYPED[5:] in texts
    assert prove(world.out, ledgers(world)).ok


def test_keys_after_a_redacted_focus_name_no_window(world: World) -> None:
    device = world.device()
    device.give(at(0))
    session = secrets.token_hex(16)
    events = [
        Event(ns(at(1)), Kind.FOCUS, 0, 0, 100, 100, app="gedit", title="notes"),
        *typed("ab", at(1.5)),
        Event(ns(at(2)), Kind.FOCUS, 0, 0, 100, 100, app="keepassx", title="Passwords"),
        *typed("cd", at(2.5)),
    ]
    world.collector.upload(device, device.bundle(events, session))
    # Only the second focus lies inside the redaction: its keys were typed
    # into a window the dataset may not name, and not into gedit.
    second = at(2)
    device.act(
        "session.redacted",
        at(70),
        session=session,
        method="time",
        events=1,
        categories=["app_focus", "window_titles"],
        interval={
            "start": utc_us(second - timedelta(seconds=1)),
            "end": utc_us(second + timedelta(seconds=1)),
        },
    )
    world.collector.upload(device, device.bundle())
    world.ingest()
    rows = world.rows()
    keys = [(r["char"], r["app"]) for r in rows if r["kind"] == "key_down"]
    assert keys == [("a", "gedit"), ("b", "gedit"), ("c", None), ("d", None)]
    assert [r["app"] for r in rows if r["kind"] == "focus"] == ["gedit"]
    window = ("episode", "text", "app", "title", "window_x", "window_width")
    assert [tuple(a[c] for c in window) for a in world.actions()] == [
        (1, "ab", "gedit", "notes", 0, 100),
        (2, "cd", None, None, None, None),
    ]
    assert prove(world.out, ledgers(world)).ok


def _tampered(world: World, values: dict[str, Any]) -> list[str]:
    """The proof's rules broken once the second action is given `values`."""
    (path,) = list((world.out / "actions").rglob("*.parquet"))
    table = pq.read_table(path)
    for name, value in values.items():
        i = table.schema.get_field_index(name)
        column = table.column(name).to_pylist()
        column[1] = value
        table = table.set_column(i, table.field(i), pa.array(column, table.field(i).type))
    pq.write_table(table, path)
    result = prove(world.out, ledgers(world))
    return sorted({(v["rule"], v["category"]) for v in result.violations})


def test_the_audit_holds_an_actions_window_and_title_to_app_focus(world: World) -> None:
    _typed_in_gedit_then_app_focus_refused(world)
    assert prove(world.out, ledgers(world)).ok
    assert [a["window_x"] for a in world.actions()] == [5, None]
    for column, value in (
        ("window_x", 5),
        ("window_y", 6),
        ("window_width", 700),
        ("window_height", 500),
    ):
        assert _tampered(world, {column: value}) == [("outside-consent", "app_focus")]
        _tampered(world, {column: None})
    # window_titles is consented throughout; ingest keeps a title only with app_focus.
    assert _tampered(world, {"title": "notes"}) == [("outside-consent", "app_focus")]


def test_focus_changes_app_focus_may_not_keep_start_no_episode(world: World) -> None:
    device = world.device()
    device.give(at(0), categories=["keys"])
    session = secrets.token_hex(16)
    events = [
        Event(ns(at(1)), Kind.FOCUS, 0, 0, 100, 100, app="gedit", title="notes"),
        *typed("ab", at(1.5)),
        Event(ns(at(2)), Kind.FOCUS, 0, 0, 100, 100, app="keepassx", title="Passwords"),
        *typed("cd", at(2.5)),
    ]
    world.collector.upload(device, device.bundle(events, session))
    world.ingest()
    # Without app_focus the window changes are no one's to see, not even as episodes.
    assert [(a["episode"], a["text"], a["app"]) for a in world.actions()] == [
        (0, "ab", None),
        (0, "cd", None),
    ]
    assert prove(world.out, ledgers(world)).ok
