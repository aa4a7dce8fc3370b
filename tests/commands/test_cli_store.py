"""The CLI over a real store: sessions, ledger, audit, and every fault as one clean line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cleartrace.cli import main
from cleartrace.events import Kind, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def record_session(paths: Paths, text: str) -> str:
    home = Home.open(paths, create=False)
    try:
        handle = home.store.begin_session(time.time_ns(), 0)
        events = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))]
        for i, ch in enumerate(text):
            events.append((1000 + i, int(Kind.KEY_DOWN), keysym_of_char(ch), 0, 0, 0, None))
        home.store.append_chunk(handle, events)
        home.store.end_session(handle, time.time_ns())
        return handle.id
    finally:
        home.close()


@pytest.fixture
def consented(private_home: Paths, capsys: pytest.CaptureFixture[str]) -> Paths:
    assert run(capsys, "consent", "give", "--category", "keys", "--category", "app_focus")[0] == 0
    return private_home


def test_sessions_list_show_delete(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    sid = record_session(consented, "Hello")
    code, out, _ = run(capsys, "sessions", "list", "--json")
    (row,) = json.loads(out)
    assert row["id"] == sid
    assert row["counts"] == {"app_focus": 1, "keys": 5}
    assert row["applications"] == ["Gedit"]
    code, out, _ = run(capsys, "sessions", "show", sid[:8], "--text")
    assert code == 0
    assert "--- stream 1: Gedit\nHello" in out
    assert run(capsys, "sessions", "delete", sid[:8])[0] == 0
    assert run(capsys, "sessions", "list", "--json")[1].strip() == "[]"
    last = json.loads(run(capsys, "ledger", "show", "--json")[1])[-1]
    assert (last["kind"], last["session"]) == ("session.deleted", sid)


def test_unknown_session_is_exit_2(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sessions", "show", "abcdef")
    assert code == 2
    assert err == "cleartrace: no session has id 'abcdef'; see 'cleartrace sessions list'\n"


def test_export_and_audit_verify_and_tamper_exit_1(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record_session(consented, "x")
    out_file = tmp_path / "ledger.jsonl"
    assert run(capsys, "ledger", "export", "--out", str(out_file))[0] == 0
    code, out, _ = run(capsys, "audit", "verify", str(out_file), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["records"] == 1
    lines = out_file.read_text().splitlines()
    lines[1] = lines[1].replace("app_focus", "mouse_move")
    out_file.write_text("\n".join(lines) + "\n")
    code, _, err = run(
        capsys, "audit", "verify", str(out_file), "--expect-device", report["device"]
    )
    assert code == 1
    assert err.startswith("cleartrace: ledger broken at record 1:")


def test_audit_verify_missing_file_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "verify", "/nonexistent/ledger.jsonl")
    assert code == 2
    assert "cannot read /nonexistent/ledger.jsonl" in err


def test_corrupt_store_is_one_line_exit_2_and_untouched(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    for side in ("-wal", "-shm"):
        Path(f"{consented.db}{side}").unlink(missing_ok=True)
    consented.db.write_bytes(b"\x00garbage" * 1000)
    code, _, err = run(capsys, "sessions", "list")
    assert code == 2
    assert err.count("\n") == 1
    assert str(consented.db) in err
    assert "restore a backup" in err
    assert consented.db.read_bytes() == b"\x00garbage" * 1000


def test_wrong_master_key_is_one_line_exit_2(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    record_session(consented, "keep me")
    key_file = consented.keys_dir / "master.key"
    key_file.write_bytes(bytes(32))
    code, _, err = run(capsys, "sessions", "list")
    assert code == 2
    assert str(consented.db) in err
    assert str(key_file) in err
    assert "does not match" in err


def test_missing_key_names_where_it_was_expected(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    (consented.keys_dir / "master.key").unlink()
    code, _, err = run(capsys, "sessions", "list")
    assert code == 2
    assert str(consented.keys_dir / "master.key") in err
    assert not (consented.keys_dir / "master.key").exists()


def test_status_before_anything_is_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    snap = json.loads(out)
    assert snap["key_storage"] is None
    assert snap["state"] in {"not running", "cannot record"}


def test_pause_without_a_recorder_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pause", "--for", "15m")
    assert code == 2
    assert "no recorder is running" in err


def test_exclude_via_cli(consented: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "exclude", "add", "Slack")[0] == 0
    code, out, _ = run(capsys, "exclude", "list", "--json")
    assert {"app": "slack", "source": "personal"} in json.loads(out)
    code, _, err = run(capsys, "exclude", "remove", "keepassxc")
    assert code == 2
    assert "policy" in err


def test_audit_verify_without_a_head_says_truncation_cannot_be_excluded(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "consent", "give", "--category", "clicks")[0] == 0
    out_file = tmp_path / "ledger.jsonl"
    assert run(capsys, "ledger", "export", "--out", str(out_file))[0] == 0
    lines = out_file.read_text().splitlines()
    assert len(lines) == 3
    out_file.write_text("\n".join(lines[:-1]) + "\n")  # the last record cut off
    code, out, _ = run(capsys, "audit", "verify", str(out_file))
    assert code == 0
    assert not out.startswith("ok")
    assert out.startswith("unanchored tail: truncation cannot be excluded without a witnessed head")
    _, head, _ = run(capsys, "audit", "verify", str(out_file), "--json")
    report = json.loads(head)
    assert report["anchored"] is False
    code, out, _ = run(capsys, "audit", "verify", str(out_file), "--head", report["head"])
    assert code == 0
    assert out.startswith("ok: ")


def store_bytes(paths: Paths) -> bytes:
    """Every byte of the store file and its WAL and shared-memory files."""
    sides = [paths.db, *(Path(f"{paths.db}{s}") for s in ("-wal", "-shm"))]
    return b"".join(p.read_bytes() for p in sides if p.exists())


def test_an_excluded_application_is_named_in_no_ledger_record_nor_in_the_store_file(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    app = "signal-desktop-beta"
    assert run(capsys, "exclude", "add", "Signal-Desktop-Beta")[0] == 0
    code, out, _ = run(capsys, "exclude", "list", "--json")
    assert code == 0
    assert {"app": app, "source": "personal"} in json.loads(out)
    out_file = tmp_path / "ledger.jsonl"
    assert run(capsys, "ledger", "export", "--out", str(out_file))[0] == 0
    exported = out_file.read_text()
    assert app not in exported.casefold()
    assert app.encode() not in store_bytes(consented).lower()
    added = json.loads(exported.splitlines()[-1])
    assert added["kind"] == "app.excluded"
    assert run(capsys, "audit", "verify", str(out_file))[0] == 0

    assert run(capsys, "exclude", "remove", app)[0] == 0
    removed = json.loads(run(capsys, "ledger", "show", "--json")[1])[-1]
    assert (removed["kind"], removed["app_tag"]) == ("app.included", added["app_tag"])
    assert app.encode() not in store_bytes(consented).lower()
    assert {"app": app, "source": "personal"} not in json.loads(
        run(capsys, "exclude", "list", "--json")[1]
    )
