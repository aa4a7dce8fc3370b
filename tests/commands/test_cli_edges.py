"""What a new user meets first on the command line: every change said, no surprise."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cleartrace.cli import main
from cleartrace.control import ControlServer
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.cli import CLI, ct
from tests.support.sessions import typed_session

README = Path(__file__).resolve().parents[2] / "README.md"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def said(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line a state-changing command says on stderr (and it succeeded)."""
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"cleartrace {' '.join(args)} said {lines}"
    return lines[0]


@pytest.fixture
def consented(private_home: Paths, capsys: pytest.CaptureFixture[str]) -> Paths:
    assert run(capsys, "consent", "give", "--all")[0] == 0
    return private_home


def test_forget_says_what_it_did_to_approved_sessions(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    approved = typed_session(consented, "approve me")
    typed_session(consented, "pending")
    said(capsys, "sessions", "approve", approved)
    line = said(capsys, "forget", "--last", "15m")
    assert "19 events removed for good" in line
    assert "1 approved" in line
    assert "1 pending" in line
    assert "approve me" not in line


def test_the_readme_exclude_example_works_and_says_what_changed(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    (app,) = re.findall(r"cleartrace exclude add (\S+)", README.read_text())
    assert app in said(capsys, "exclude", "add", app)
    assert app in said(capsys, "exclude", "remove", app)


def test_every_state_changing_command_says_one_line(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = typed_session(consented, "abc")
    other = typed_session(consented, "def")
    for args in [
        ("consent", "withdraw", "--category", "scroll"),
        ("consent", "refuse", "--category", "scroll"),
        ("consent", "give", "--category", "scroll"),
        ("exclude", "add", "Gimp"),
        ("exclude", "remove", "gimp"),
        ("settings", "hold-days", "5"),
        ("settings", "hotkey", "Ctrl+Alt+Shift+P"),
        ("settings", "hotkey", "--none"),
        ("sessions", "hold", sid),
        ("sessions", "approve", sid),
        ("sessions", "delete", other),
        ("forget", "--last", "1m"),
        ("keys", "rotate"),
    ]:
        said(capsys, *args)


def test_exporting_an_empty_ledger_says_so(
    private_home: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Home.open(private_home, create=True).close()  # a home, with no record yet
    out = tmp_path / "ledger.jsonl"
    assert str(out) in said(capsys, "ledger", "export", "--out", str(out))


def test_withdrawal_says_what_was_withdrawn_and_what_remains(
    consented: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    line = said(capsys, "consent", "withdraw", "--category", "keys", "--category", "clicks")
    assert line.startswith("consent withdrawn for: clicks, keys;")
    assert "still given for: app_focus, mouse_move, scroll, window_titles" in line
    line = said(capsys, "consent", "withdraw", "--all")
    assert line == (
        "consent withdrawn for: app_focus, mouse_move, scroll, window_titles; still given for: none"
    )


def test_status_shows_the_device_fingerprint_audit_verify_expects(
    consented: Paths, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = Home.open(consented, create=False)
    try:
        device = home.ledger.device
    finally:
        home.close()
    _code, out, _ = run(capsys, "status", "--json")
    assert json_of(out)["device"] == device
    assert f"device:       {device}" in run(capsys, "status")[1]
    export = tmp_path / "ledger.jsonl"
    assert run(capsys, "ledger", "export", "--out", str(export))[0] == 0
    assert run(capsys, "audit", "verify", str(export), "--expect-device", device)[0] == 0


def test_status_on_a_fresh_home_names_no_device(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--json")
    assert (code, json_of(out)["device"]) == (0, None)


def json_of(text: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(text)
    return value


@pytest.mark.parametrize("args", [("pause", "--for", "15"), ("forget", "--last", "15")])
def test_a_bare_number_is_refused_with_an_example(
    consented: Paths, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "15 needs a unit" in err
    assert "15m" in err


@pytest.mark.parametrize("args", [("pause", "--for", "-5m"), ("forget", "--last", "-5m")])
def test_a_negative_duration_is_named_as_such(
    consented: Paths, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "a duration cannot be negative" in err
    assert "expected one argument" not in err


def test_record_refuses_before_it_says_recording(consented: Paths) -> None:
    server = ControlServer(consented.socket, lambda req: {})
    try:
        done = ct("record", check=False, timeout=30)
    finally:
        server.close()
    assert done.returncode != 0
    assert "already running" in done.stderr
    assert "recording" not in done.stderr.replace("already running", "")


def test_record_refuses_while_a_recorder_holds_the_socket_without_answering(
    consented: Paths,
) -> None:
    # A busy recorder (ending a long session) answers late: that is not a
    # stale socket to take over, or the running one would be left unreachable.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(consented.socket))
    silent.listen(8)
    try:
        done = ct("record", "--duration", "1s", check=False, timeout=60)
        assert consented.socket.exists()
    finally:
        silent.close()
    assert done.returncode != 0
    assert "did not answer" in done.stderr
    assert "recording" not in done.stderr


def test_sessions_list_on_a_fresh_home_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sessions", "list", "--json")
    assert (code, out.strip()) == (0, "[]")
    code, out, err = run(capsys, "sessions", "list")
    assert (code, out, err.strip()) == (0, "", "no sessions")


def test_org_devices_prints_full_hashes_and_ends_quietly_in_a_pipe(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cleartrace.org.registry import Registry

    registry = Registry.open(tmp_path)
    try:
        for token in registry.issue_tokens(400):
            registry.enroll(token, Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    finally:
        registry.close()
    listing = ct("org", "devices", "--data", str(tmp_path))
    first = listing.stdout.splitlines()[1]
    assert re.search(r"\b0:[0-9a-f]{64}$", first), first
    for flags in ([], ["--json"]):
        # `cleartrace org devices | head -c 10`: the reader leaves after 10 bytes.
        shell = f"{' '.join(CLI)} org devices --data {tmp_path} {' '.join(flags)} | head -c 10"
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, check=False
        )
        assert done.stderr == ""
        assert len(done.stdout) == 10
