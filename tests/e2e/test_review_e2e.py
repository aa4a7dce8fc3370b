"""Review on a real recording: typed on Xvfb, redacted and forgotten through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, show_text, status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

CARD = "4111 1111 1111 1111"
CANARY = "zqxredactme"


def exported(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "mine.json"
    ct("export", "--out", str(out))
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def typed_keys(session: dict[str, Any]) -> str:
    return "".join(e["key"] for e in session["events"] if e["kind"] == "key_down")


@pytest.mark.usefixtures("wm")
def test_detected_and_matched_text_is_removed_for_good(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    app_window("Gedit", "notes")
    rec = start_recorder()
    xdo("type", "--delay", "15", f"pay {CARD} now {CANARY} end")
    rec.stop()
    (session,) = sessions()
    sid = session["id"]
    assert show_text(sid) == f"pay {CARD} now {CANARY} end"
    shown = json.loads(ct("sessions", "show", sid, "--pii", "--json").stdout)
    assert [f["category"] for f in shown["text"][0]["pii"]] == ["payment_card"]
    before = sum(session["counts"].values())

    dry = ct("sessions", "redact", sid, "--pii", "--dry-run")
    assert "would remove keys" in dry.stderr
    ct("sessions", "redact", sid, "--pii")
    ct("sessions", "redact", sid, "--match", CANARY)

    assert show_text(sid) == "pay  now  end"
    data = exported(tmp_path)
    (mine,) = data["sessions"]
    keys = typed_keys(mine)
    assert CANARY not in keys
    assert "4111" not in keys
    removed = sum(sum(r["removed"].values()) for r in mine["redactions"])
    assert sum(mine["counts"].values()) == before - removed
    # Every event is counted but the screen and keyboard layouts (context).
    context = [e for e in mine["events"] if e["kind"] in ("screen", "monitor", "layout")]
    assert len(mine["events"]) - len(context) == before - removed
    records = [r for r in data["ledger"] if r["kind"] == "session.redacted"]
    assert [r["method"] for r in records] == ["pii", "match"]
    assert CANARY not in json.dumps(records)
    ledger = tmp_path / "ledger.jsonl"
    ct("ledger", "export", "--out", str(ledger))
    assert ct("audit", "verify", str(ledger)).returncode == 0
    for path in private_home.home.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path.name


@pytest.mark.usefixtures("wm")
def test_forget_while_recording_goes_on_in_a_new_session(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[..., str],
    private_home: Paths,
) -> None:
    ct("consent", "give", "--all")
    app_window("Gedit", "notes")
    rec = start_recorder()
    first = status(private_home)["session"]
    xdo("type", "--delay", "15", "forget me")
    wait_for(lambda: status(private_home)["counts"].get("keys", 0) >= 18, what="keys stored")
    done = ct("forget", "--last", "1h")
    assert "events removed for good" in done.stderr
    second = status(private_home)["session"]
    assert second != first
    assert "keyboard" in rec.hooks()  # recording goes on
    xdo("type", "--delay", "15", "kept")
    rec.stop()
    by_id = {s["id"]: s for s in sessions()}
    assert show_text(first) == ""
    assert by_id[first]["counts"].get("keys", 0) == 0
    assert show_text(second) == "kept"
    ledger = json.loads(ct("ledger", "show", "--json").stdout)
    forgotten = [r for r in ledger if r["kind"] == "session.redacted"]
    assert [(r["method"], r["session"]) for r in forgotten] == [("forget", first)]
