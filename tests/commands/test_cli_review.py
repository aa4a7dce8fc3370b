"""Reviewing from the CLI over a real store: redact, forget, approve, hold, export."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from cleartrace.cli import main
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths

DAY_NS = 86_400 * 10**9
MS = 1_000_000


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def typed(text: str, t0: int) -> list[RawEvent]:
    out: list[RawEvent] = []
    for i, ch in enumerate(text):
        code = 0xFF0D if ch == "\n" else keysym_of_char(ch)
        out.append((t0 + i * 100 * MS, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        out.append((t0 + i * 100 * MS + 50 * MS, int(Kind.KEY_UP), code, 0, 0, 0, None))
    return out


def record(
    paths: Paths,
    *texts: tuple[str, str],
    started_ns: int | None = None,
    ended_ns: int | None = None,
) -> str:
    """A closed session: per (application, text) a focus event, the text typed, a click."""
    home = Home.open(paths, create=False)
    try:
        start = time.time_ns() - 60 * 10**9 if started_ns is None else started_ns
        handle = home.store.begin_session(start, 0)
        t = 0
        for app, text in texts:
            batch: list[RawEvent] = [(t, int(Kind.FOCUS), 0, 0, 0, 0, (app, None))]
            batch += typed(text, t + MS)
            t += (len(text) + 1) * 100 * MS
            batch.append((t, int(Kind.BUTTON_DOWN), 10, 10, 1, 0, None))
            batch.append((t + MS, int(Kind.BUTTON_UP), 10, 10, 1, 0, None))
            t += 10 * MS
            home.store.append_chunk(handle, batch)
        home.store.end_session(handle, time.time_ns() if ended_ns is None else ended_ns)
        return handle.id
    finally:
        home.close()


def shown(capsys: pytest.CaptureFixture[str], sid: str, *flags: str) -> dict[str, Any]:
    code, out, err = run(capsys, "sessions", "show", sid, "--text", *flags, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def texts(capsys: pytest.CaptureFixture[str], sid: str) -> list[str]:
    return [s["text"] for s in shown(capsys, sid)["text"]]


def last_record(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(run(capsys, "ledger", "show", "--json")[1])[-1]
    return record


@pytest.fixture
def consented(private_home: Paths, capsys: pytest.CaptureFixture[str]) -> Paths:
    assert run(capsys, "consent", "give", "--all")[0] == 0
    return private_home


def test_redact_a_span_removes_its_keys_and_is_ledgered(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sid = record(consented, ("Gedit", "Hello qzsecret world"), ("Xterm", "ls -l"))
    before = shown(capsys, sid)
    assert [s["text"] for s in before["text"]] == ["Hello qzsecret world", "ls -l"]

    code, _, err = run(capsys, "sessions", "redact", sid[:8], "--span", "6:15", "--dry-run")
    assert (code, err.splitlines()[0]) == (0, f"would remove keys 18 from session {sid[:12]}")
    assert texts(capsys, sid)[0] == "Hello qzsecret world"  # a dry run changes nothing

    assert run(capsys, "sessions", "redact", sid[:8], "--span", "6:15")[0] == 0
    after = shown(capsys, sid)
    assert [s["text"] for s in after["text"]] == ["Hello world", "ls -l"]
    assert after["counts"]["keys"] == before["counts"]["keys"] - 18
    assert after["counts"]["clicks"] == before["counts"]["clicks"]
    (marker,) = after["redactions"]
    assert (marker["method"], marker["removed"]) == ("span", {"keys": 18})
    rec = last_record(capsys)
    assert (rec["kind"], rec["method"], rec["events"], rec["categories"]) == (
        "session.redacted",
        "span",
        18,
        ["keys"],
    )
    assert "qzsecret" not in json.dumps(rec)
    ledger = tmp_path / "ledger.jsonl"
    assert run(capsys, "ledger", "export", "--out", str(ledger))[0] == 0
    assert run(capsys, "audit", "verify", str(ledger))[0] == 0


def test_redact_the_second_stream_by_number(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = record(consented, ("Gedit", "keep"), ("Xterm", "ssh root@host"))
    assert run(capsys, "sessions", "redact", sid, "--stream", "2", "--span", "4:8")[0] == 0
    assert texts(capsys, sid) == ["keep", "ssh @host"]


def test_redact_by_pattern_and_by_pii(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    sid = record(
        consented,
        ("Gedit", "write to anna.berg@example.org or call +44 20 7946 0958 today"),
        ("Xterm", "order 1234 and order 5678"),
    )
    assert run(capsys, "sessions", "redact", sid, "--match", r"order \d+")[0] == 0
    assert texts(capsys, sid)[1] == " and "
    assert run(capsys, "sessions", "redact", sid, "--pii", "--category", "phone")[0] == 0
    assert texts(capsys, sid)[0] == "write to anna.berg@example.org or call  today"
    assert run(capsys, "sessions", "redact", sid, "--pii")[0] == 0
    assert texts(capsys, sid)[0] == "write to  or call  today"
    pii = shown(capsys, sid, "--pii")["text"][0]["pii"]
    assert pii == []
    methods = [r["method"] for r in shown(capsys, sid)["redactions"]]
    assert methods == ["match", "pii", "pii"]


def test_sessions_show_marks_pii(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    sid = record(consented, ("Gedit", "mail anna.berg@example.org now"))
    (stream,) = shown(capsys, sid, "--pii")["text"]
    (finding,) = stream["pii"]
    assert (finding["category"], finding["start"], finding["end"]) == ("email", 5, 26)
    code, out, _ = run(capsys, "sessions", "show", sid, "--pii")
    assert code == 0
    assert "⟦email: anna.berg@example.org⟧" in out


def test_redact_a_time_range_removes_every_category(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    start = 1_790_000_000 * 10**9  # 2026-09-21T14:13:20Z
    sid = record(consented, ("Gedit", "abc"), ("Xterm", "xyz"), started_ns=start)
    # The first stream: focus at +0, keys, a click at +0.4 s; the second from +0.41 s.
    code, _, err = run(
        capsys,
        "sessions",
        "redact",
        sid,
        "--from",
        "2026-09-21T14:13:20Z",
        "--to",
        "2026-09-21T14:13:20.405Z",
    )
    assert code == 0, err
    info = shown(capsys, sid)
    assert [s["text"] for s in info["text"]] == ["xyz"]
    assert info["applications"] == ["Xterm"]
    (marker,) = info["redactions"]
    assert marker["removed"] == {"app_focus": 1, "clicks": 2, "keys": 6}
    assert marker["from"] == "2026-09-21 14:13:20Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--span", "3:100"], "span 3:100 is not within stream 1, which has 5 characters"),
        (["--span", "4:2"], "span 4:2 is empty or inverted"),
        (["--span", "a:b"], "'a:b' is not a span"),
        (["--span", "0:1", "--stream", "9"], "there is no text stream 9"),
        (["--match", "(unclosed"], "invalid regular expression at position 0"),
        (["--from", "10:15"], "a time range needs both --from and --to"),
        (["--from", "+5m", "--to", "+1m"], "the time range is empty or inverted"),
        (["--from", "yesterday", "--to", "+1m"], "'yesterday' is not a time"),
        (["--pii", "--category", "shoe_size"], "unknown PII category 'shoe_size'"),
        (["--match", "x", "--category", "email"], "--category chooses PII categories"),
    ],
)
def test_bad_redactions_are_one_line_exit_2_and_change_nothing(
    consented: Paths, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sid = record(consented, ("Gedit", "hello"))
    seq = last_record(capsys)["seq"]
    code, out, err = run(capsys, "sessions", "redact", sid, *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "(unclosed" not in err  # a pattern may itself be the secret
    assert texts(capsys, sid) == ["hello"]
    assert last_record(capsys)["seq"] == seq


def test_unknown_session_is_exit_2(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["redact", "abc123", "--span", "0:1"], ["approve", "abc123"], ["hold", "ff"]):
        code, _, err = run(capsys, "sessions", *args)
        assert code == 2
        assert "no session has id" in err


def test_forget_the_last_minutes_across_sessions(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    old = record(consented, ("Gedit", "old"), started_ns=time.time_ns() - 3 * 3600 * 10**9)
    recent = record(consented, ("Gedit", "recent"))
    code, _, err = run(capsys, "forget", "--last", "15m")
    assert code == 0, err
    assert "events removed for good" in err
    assert texts(capsys, old) == ["old"]
    assert texts(capsys, recent) == []
    rec = last_record(capsys)
    assert (rec["kind"], rec["method"], rec["session"]) == ("session.redacted", "forget", recent)
    assert run(capsys, "forget", "--last", "soon")[0] == 2


def test_approve_hold_and_auto_approval(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time_ns()
    fresh = record(consented, ("Gedit", "a"))
    due = record(consented, ("Gedit", "b"), started_ns=now - 5 * DAY_NS, ended_ns=now - 4 * DAY_NS)
    held = record(consented, ("Gedit", "c"), started_ns=now - 6 * DAY_NS, ended_ns=now - 5 * DAY_NS)
    assert run(capsys, "sessions", "hold", held)[0] == 0
    rows = {r["id"]: r for r in json.loads(run(capsys, "sessions", "list", "--json")[1])}
    assert rows[due]["state"] == "approved"  # the hold period passed
    assert rows[held]["state"] == "held"  # held: never approves itself
    assert rows[fresh]["state"] == "pending"
    assert rows[fresh]["auto_approve"] > rows[fresh]["end"]
    kinds = [
        (r["kind"], r.get("by")) for r in json.loads(run(capsys, "ledger", "show", "--json")[1])
    ]
    assert ("session.held", None) in kinds
    assert ("session.approved", "hold_period") in kinds
    code, _, err = run(capsys, "sessions", "approve", fresh[:10])
    assert (code, err.strip()) == (0, f"session {fresh[:12]} is now approved")
    assert last_record(capsys)["by"] == "person"
    assert run(capsys, "sessions", "approve", fresh)[2].strip().endswith("was already approved")


def test_export_holds_everything_decrypted(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sid = record(consented, ("Gedit", "Hello"), ("Xterm", "pwd\n"))
    assert run(capsys, "sessions", "redact", sid, "--span", "0:1")[0] == 0
    out = tmp_path / "mine.json"
    code, _, err = run(capsys, "export", "--out", str(out))
    assert code == 0, err
    assert "not encrypted" in err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    data = json.loads(out.read_text())
    assert (data["format"], data["version"]) == ("cleartrace-personal-export", 1)
    assert data["consent"]["keys"] == "given"
    assert data["ledger"] == json.loads(run(capsys, "ledger", "show", "--json")[1])
    (session,) = data["sessions"]
    assert session["id"] == sid
    assert [s["text"] for s in session["text"]] == ["ello", "pwd\n"]
    kinds = [e["kind"] for e in session["events"]]
    assert len(kinds) == sum(session["counts"].values())
    assert kinds[0] == "focus"
    assert session["events"][0]["app"] == "Gedit"
    keys = [e["key"] for e in session["events"] if e["kind"] == "key_down"]
    assert keys == [*"ello", *"pwd", "Return"]
    assert session["redactions"][0]["removed"] == {"keys": 2}
    assert not list(tmp_path.glob(".mine.json*"))  # no temporary file left


def test_export_to_an_unwritable_place_is_exit_2(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record(consented, ("Gedit", "x"))
    code, _, err = run(capsys, "export", "--out", str(tmp_path / "missing" / "mine.json"))
    assert code == 2
    assert "cannot write the export" in err


def test_activity_per_minute_is_shown(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    start = 1_790_000_000 * 10**9  # 2026-09-21T14:13:20Z
    sid = record(consented, ("Gedit", "abc"), ("Xterm", "xyz"), started_ns=start)
    (minute,) = shown(capsys, sid, "--activity")["activity"]
    assert minute == {
        "minute": "2026-09-21 14:13Z",
        "keys": 6,
        "moves": 0,
        "clicks": 2,
        "scrolls": 0,
        "excluded": False,
    }


def test_the_hold_period_a_person_chose_decides_auto_approval(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time_ns()
    session = record(
        consented, ("Gedit", "b"), started_ns=now - 5 * DAY_NS, ended_ns=now - 4 * DAY_NS
    )
    assert run(capsys, "settings", "hold-days", "7")[0] == 0
    rows = {r["id"]: r for r in json.loads(run(capsys, "sessions", "list", "--json")[1])}
    assert rows[session]["state"] == "pending"  # 4 days of 7
    assert run(capsys, "settings", "hold-days", "2")[0] == 0
    rows = {r["id"]: r for r in json.loads(run(capsys, "sessions", "list", "--json")[1])}
    assert rows[session]["state"] == "approved"
