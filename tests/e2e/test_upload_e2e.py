"""Keystroke to training row on real processes: typed on Xvfb, redacted,
approved, uploaded to a collector on 127.0.0.1, ingested; then a withdrawal
and a deletion travel in the ledger and the re-ingested dataset drops them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.orgkit import Org
from tests.support.recording import Recording, sessions, show_text
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver


def ingest(org: Org, dataset: Path) -> dict[str, Any]:
    done = ct(
        "org",
        "ingest",
        "--from",
        str(org.collector.data),
        "--keys",
        str(org.keys_dir),
        "--out",
        str(dataset),
        "--witness-key",
        str(org.collector.data / "witness.pub"),
        "--quiet",
        "--json",
    )
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def enroll(org: Org) -> None:
    ct(
        "enroll",
        "--collector",
        org.collector.url,
        "--policy",
        str(org.policy),
        "--token",
        org.collector.token(),
    )


def rows(dataset: Path) -> list[dict[str, Any]]:
    files = sorted(dataset.glob("events/day=*/device=*/*.parquet"))
    if not files:
        return []
    query = duckdb.sql(
        "SELECT session, kind, category, char, app, title, time FROM read_parquet(?, "
        # Pointer events of one frame share a time (their timing is floored to
        # frames unless typing_rhythm is consented), as a screen and its
        # monitors do: ties are ordered too.
        "hive_partitioning=true) ORDER BY time, session, kind, char",
        params=[[str(f) for f in files]],
    )
    names = [d[0] for d in query.description]
    return [dict(zip(names, row, strict=True)) for row in query.fetchall()]


def typed(table: list[dict[str, Any]], session: str) -> str:
    return "".join(
        r["char"]
        for r in table
        if r["session"] == session and r["kind"] == "key_down" and r["char"]
    )


def events_on_device(tmp_path: Path) -> dict[str, int]:
    out = tmp_path / "mine.json"
    ct("export", "--out", str(out))
    return {s["id"]: len(s["events"]) for s in json.loads(out.read_text())["sessions"]}


@pytest.mark.usefixtures("wm")
def test_the_dataset_is_what_was_typed_minus_what_was_redacted_and_forgets_on_withdrawal(
    org: Org,
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    enroll(org)
    ct("consent", "give", "--all")
    app_window("Gedit", "notes")
    rec = start_recorder()
    xdo("type", "--delay", "15", "hello secret world")
    xdo("mousemove", "50", "60", "click", "1")
    rec.stop()
    (first,) = sessions()
    ct("sessions", "redact", first["id"], "--match", "secret")
    assert show_text(first["id"]) == "hello  world"
    rec = start_recorder()
    xdo("type", "--delay", "15", "second")
    rec.stop()
    (second,) = [s for s in sessions() if s["id"] != first["id"]]
    for s in (first, second):
        ct("sessions", "approve", s["id"])
    ct("upload", "--now")
    assert "the outbox is empty" in ct("outbox", "list").stdout

    dataset = tmp_path / "dataset"
    summary = ingest(org, dataset)
    assert summary["rejected"] == []
    assert summary["events"]["dropped"]["violation"] == 0
    table = rows(dataset)
    assert typed(table, first["id"]) == "hello  world"
    assert typed(table, second["id"]) == "second"
    on_device = events_on_device(tmp_path)
    assert {
        s: sum(1 for r in table if r["session"] == s) for s in on_device
    } == on_device  # every event the device holds after redaction, and nothing else
    assert {r["app"] for r in table if r["kind"] == "focus"} == {"Gedit"}
    again = ingest(org, dataset)
    assert again["files"]["written"] == 0  # re-running adds nothing twice
    assert rows(dataset) == table

    ct("consent", "withdraw", "--category", "keys")
    ct("sessions", "delete", second["id"])
    ct("upload", "--now")
    ingest(org, dataset)
    after = rows(dataset)
    assert {r["session"] for r in after} == {first["id"]}
    assert [r for r in after if r["category"] == "keys"] == []
    kept = [r for r in table if r["session"] == first["id"] and r["category"] != "keys"]
    assert after == kept
    assert any(r["kind"] == "button_down" for r in after)


@pytest.mark.usefixtures("wm")
def test_enrolling_while_recording_stops_capture_until_consent_under_the_new_policy(
    org: Org,
    start_recorder: Callable[[], Recording],
    private_home: Paths,
) -> None:
    ct("settings", "min-inputs", "0")  # nothing is typed: keep the sessions to count them
    ct("consent", "give", "--all")
    rec = start_recorder()
    assert "keyboard" in rec.hooks()
    enroll(org)
    # Consent was given to the built-in policy, not to the organisation's.
    wait_for(lambda: rec.hooks() == [], what="hooks removed after enrolment")
    shown = json.loads(ct("consent", "show", "--json").stdout)
    assert shown["policy"]["id"] == "org-policy"
    assert set(shown["consent"].values()) == {"not asked"}
    ct("consent", "give", "--category", "keys")
    # Keys only: the focus hook comes with them (exclusions need the focused app).
    wait_for(
        lambda: set(rec.hooks()) == {"keyboard", "focus"}, what="keyboard hook under the new policy"
    )
    rec.stop()
    # The recording went on in a new session, begun under the organisation's policy.
    assert len(sessions()) == 2
    records = json.loads(ct("ledger", "show", "--json").stdout)
    enrolled = next(i for i, r in enumerate(records) if r["kind"] == "device.enrolled")
    given = [r for r in records[enrolled:] if r["kind"] == "consent.given"]
    assert [(r["policy"]["id"], r["categories"]) for r in given] == [("org-policy", ["keys"])]


@pytest.mark.usefixtures("wm")
def test_a_session_nobody_reviewed_reaches_the_dataset_without_its_personal_data(
    org: Org,
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    email, phone = "jane.qzcanaryxv@example.org", "+44 20 7946 0958"
    enroll(org)
    ct("consent", "give", "--all")
    ct("settings", "hold-days", "0")  # approves itself as soon as it ends
    app_window("Gedit", "notes")
    rec = start_recorder()
    xdo("type", "--delay", "15", f"write to {email} or call {phone} about order 4711")
    rec.stop()
    (session,) = sessions()
    ct("upload", "--now")  # never opened, never approved by hand
    assert json.loads(ct("sessions", "show", session["id"], "--json").stdout)["state"] == "uploaded"

    dataset = tmp_path / "dataset"
    summary = ingest(org, dataset)
    assert summary["rejected"] == []
    assert summary["events"]["dropped"]["violation"] == 0
    text = typed(rows(dataset), session["id"])
    assert text == "write to  or call  about order 4711"
    records = json.loads(ct("ledger", "show", "--json").stdout)
    (withheld,) = [r for r in records if r["kind"] == "upload.redacted"]
    assert withheld["spans"] == {"email": 1, "phone": 1}
    assert "qzcanaryxv" not in json.dumps(records)
    # The person's own copy is as typed.
    assert show_text(session["id"]) == f"write to {email} or call {phone} about order 4711"
