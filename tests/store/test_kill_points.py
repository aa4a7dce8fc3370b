"""kill -9 at every statement of a deletion or a redaction: the session is then
either wholly there or wholly gone, the ledger verifies, and listing, export and
upload go on working.

Each case is a fresh enrolled device; `tests/support/killpoint.py` runs the real CLI in
a child process and SIGKILLs it just before its Nth SQL statement, for N = 1, 2,
... until the command runs to completion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.errors import UnknownSession
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review import approval, redaction
from tests.support import SUPPORT
from tests.support.orgkit import Org, approve, enrolled, record_session

KILLPOINT = SUPPORT / "killpoint.py"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def fresh_device(org: Org, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Paths, str]:
    """A new enrolled device at `root` with one approved session, not yet uploaded."""
    monkeypatch.setenv("CLEARTRACE_HOME", str(root))
    paths = Paths.from_env()
    home = enrolled(org, paths)
    try:
        give(home.ledger, frozenset(Category), active_policy(paths))
        session = record_session(home, 50)
        approve(home, session)
    finally:
        home.close()
    return paths, session


def killed_at(n: int, *args: str) -> bool:
    """Run `cleartrace args` killed before its nth statement; False once it completed."""
    done = subprocess.run(
        [sys.executable, str(KILLPOINT), str(n), *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    if done.returncode == -signal.SIGKILL:
        return True
    assert done.returncode == 0, done.stderr
    assert "killpoint:" in done.stderr
    return False


def check_after_kill(
    capsys: pytest.CaptureFixture[str], paths: Paths, session: str, tmp: Path
) -> tuple[bool, list[dict[str, object]]]:
    """Reopen after the kill and check everything still works; returns (session
    still listed, ledger records)."""
    # First, before anything opens the store (and finishes a deletion).
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    counted = json.loads(out)["sessions"]
    code, out, err = run(capsys, "sessions", "list", "--json")
    assert code == 0, err
    listed = [row["id"] for row in json.loads(out)]
    assert listed in ([session], [])
    present = listed == [session]
    assert counted == len(listed)
    if present:
        code, out, err = run(capsys, "sessions", "show", session, "--json")
        assert code == 0, err
        assert json.loads(out)["applications"] == ["xterm"]
    else:
        code, _, err = run(capsys, "sessions", "approve", session)
        assert code == 2, err
        assert "no session" in err
    code, _, err = run(capsys, "export", "--out", str(tmp / "export.json"))
    assert code == 0, err
    code, _, err = run(capsys, "upload", "--now")
    assert code == 0, err
    code, _, err = run(capsys, "ledger", "export", "--out", str(tmp / "ledger.jsonl"))
    assert code == 0, err
    code, out, err = run(capsys, "audit", "verify", str(tmp / "ledger.jsonl"))
    assert code == 0, err
    code, out, err = run(capsys, "ledger", "show", "--json")
    assert code == 0, err
    return present, json.loads(out)


def each_kill_point(
    org: Org,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: Callable[[str], list[str]],
    check: Callable[[Paths, str, Path], None],
) -> int:
    """Kill `command` at each of its statements in turn; returns how many there were."""
    n = 1
    while True:
        root = tmp_path / f"device-{n}"
        paths, session = fresh_device(org, root, monkeypatch)
        if not killed_at(n, *command(session)):
            check(paths, session, root)
            return n
        check(paths, session, root)
        n += 1


def test_a_deletion_killed_at_any_statement_leaves_the_session_wholly_there_or_gone(
    org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes: set[bool] = set()

    def check(paths: Paths, session: str, root: Path) -> None:
        present, records = check_after_kill(capsys, paths, session, root)
        deleted = [r for r in records if r["kind"] == "session.deleted"]
        assert len(deleted) == (0 if present else 1)
        outcomes.add(present)

    steps = each_kill_point(org, tmp_path, monkeypatch, lambda s: ["sessions", "delete", s], check)
    assert steps > 3
    assert outcomes == {True, False}


def test_a_redaction_killed_at_any_statement_is_wholly_made_or_not_at_all(
    org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes: set[int] = set()

    def check(paths: Paths, session: str, root: Path) -> None:
        present, records = check_after_kill(capsys, paths, session, root)
        assert present
        redacted = [r for r in records if r["kind"] == "session.redacted"]
        code, out, err = run(capsys, "sessions", "show", session, "--json")
        assert code == 0, err
        shown = json.loads(out)
        assert len(shown["redactions"]) == len(redacted) <= 1
        # 50 presses and releases of a..z, a..x: "abcde" twice, 20 events.
        assert shown["counts"]["keys"] == (100 if not redacted else 80)
        outcomes.add(len(redacted))

    steps = each_kill_point(
        org,
        tmp_path,
        monkeypatch,
        lambda s: ["sessions", "redact", s, "--match", "abcde"],
        check,
    )
    assert steps > 3
    assert outcomes == {0, 1}


def test_a_store_open_while_another_process_died_mid_deletion_no_longer_acts_on_the_session(
    org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, session = fresh_device(org, tmp_path / "device", monkeypatch)
    home = Home.open(paths, create=False)  # open before, so it does not purge on open
    try:
        events = home.store.read_events(session)
        chosen = redaction.by_match(session, events, "abcde")
        n = 1
        while True:  # kill the deleting process right after its first commit
            assert killed_at(n, "sessions", "delete", session)
            state = home.ledger.conn.execute(
                "SELECT state FROM sessions WHERE id=?", (session,)
            ).fetchone()
            if state == ("deleted",):
                break
            n += 1
        assert home.store.list_sessions() == []
        with pytest.raises(UnknownSession):
            home.store.session(session)
        with pytest.raises(UnknownSession):
            redaction.apply(home.store, home.ledger, chosen)
        with pytest.raises(UnknownSession):
            approval.hold(home.store, home.ledger, session)
        kinds = [r["kind"] for r in home.ledger.records() if r.get("session") == session]
        assert kinds[-1] == "session.deleted"
        assert kinds.count("session.deleted") == 1
    finally:
        home.close()
    reopened = Home.open(paths, create=False)
    try:  # opening finishes the deletion
        count = reopened.ledger.conn.execute("SELECT count(*) FROM chunks").fetchone()
        assert count == (0,)
        assert reopened.ledger.conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    finally:
        reopened.close()
