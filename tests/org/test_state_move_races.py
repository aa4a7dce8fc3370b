"""`cleartrace org move-state` beside other commands and other databases: an
`org token` or `org serve` started while a move runs, a rerun against a
database that is not this state, a refused target, a finished move.

Each test drives the real command (a subprocess) against a real
DATA/collector.db and a database on the session's throwaway PostgreSQL
cluster; a move is held inside its SQLite write transaction by a table lock
the test holds in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg

from cleartrace import faults
from cleartrace.consent.records import GENESIS
from cleartrace.org.devices import Head
from cleartrace.org.registry import Registry
from cleartrace.org.registry_db import DB_NAME
from cleartrace.org.state import STATE_FILE, open_state
from tests.support.cli import CLI, ct
from tests.support.org_process import issue_tokens
from tests.support.postgres import Postgres
from tests.support.waiting import wait_for


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` holds `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def _token_hashes(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {h for (h,) in conn.execute("SELECT hash FROM tokens").fetchall()}


@contextlib.contextmanager
def _move_held(data: Path, url: str, postgres: Postgres) -> Iterator[subprocess.Popen[str]]:
    """`org move-state --data DATA --to URL --json` started, and held inside its
    SQLite write transaction (its adopt waits for a table lock the test holds)
    for the block; let go at its end. The tables are made first, empty."""
    open_state(data.parent / "schema", url).close()
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
    move = subprocess.Popen(
        [*CLI, "org", "move-state", "--data", str(data), "--to", url, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def move_waits() -> bool:
            with psycopg.connect(postgres.url(), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'relation'"
                ).fetchall()
            return bool(rows[0][0])

        wait_for(move_waits, 30, "the move to wait for the table lock")
        yield move
    finally:
        blocker.rollback()
        blocker.close()


def _started(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _reap(*procs: subprocess.Popen[str] | None) -> None:
    """Kill whichever of `procs` still run (a test that failed midway), wait for
    each and close its pipes (one that ended on its own, unread, included)."""
    for proc in procs:
        if proc is None:
            continue
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _opens_file(proc: subprocess.Popen[str], data: Path) -> None:
    """Wait until `proc` has DATA/collector.db open (its -shm: it has read it)."""
    pid = proc.pid
    wait_for(lambda: _has_open(pid, data / (DB_NAME + "-shm")), 30, "the command to open the file")


def test_a_token_issued_while_the_move_runs_is_refused_not_lost(
    tmp_path: Path, postgres: Postgres
) -> None:
    """An `org token --data DATA` that opened the file while the move held it
    waits for the move's write transaction; when it gets in, the file is marked
    as moved: it refuses, naming the state, and prints no token (one printed
    would be in neither the removed file nor PostgreSQL, and enrol nothing)."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    move = token = None
    try:
        with _move_held(data, url, postgres) as move:
            token = _started("org", "token", "--data", str(data))
            _opens_file(token, data)
        moved_out, moved_err = move.communicate(timeout=60)
        issued_out, issued_err = token.communicate(timeout=60)
    finally:
        _reap(move, token)
    assert move.returncode == 0, moved_err
    assert json.loads(moved_out)["copied"] is True
    assert token.returncode == 2, issued_err
    assert issued_out == ""
    assert f"was moved to PostgreSQL; give --state '{url}'" in issued_err
    assert len(_token_hashes(url)) == 2  # the two issued before the move, no more


def test_a_collector_started_while_the_move_runs_leaves_data_a_fleets(
    tmp_path: Path, postgres: Postgres
) -> None:
    """`org serve --data DATA` opens collector.db before it takes
    DATA/collector.lock: started during the move, it waits in the file's
    transaction. When it gets in, the file is marked as moved: it refuses,
    serving nothing, and makes no new collector.db by path beside state.json,
    so DATA stays a fleet process's: `org token --data DATA` refuses too."""
    data = tmp_path / "data"
    issue_tokens(data)
    url = postgres.new_database()
    move = serving = None
    try:
        with _move_held(data, url, postgres) as move:
            serving = _started("org", "serve", "--data", str(data), "--port", "0")
            _opens_file(serving, data)
        _, moved_err = move.communicate(timeout=60)
        assert move.returncode == 0, moved_err
        assert serving.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(serving.stdout, selectors.EVENT_READ)
            sel.select(30)  # its URL (serving) or its end (refused)
        line = serving.stdout.readline().strip()
        assert not line.startswith("http"), "a collector serves the removed collector.db"
        _, serve_err = serving.communicate(timeout=30)
        assert serving.returncode == 2, serve_err
        assert f"was moved to PostgreSQL; give --state '{url}'" in serve_err
    finally:
        _reap(move, serving)
    assert not (data / DB_NAME).exists(), (
        f"a collector.db of {(data / DB_NAME).stat().st_size} bytes, mode "
        f"{(data / DB_NAME).stat().st_mode & 0o777:o}, beside {STATE_FILE} after the move"
    )
    refused = ct("org", "token", "--data", str(data), check=False)
    assert refused.returncode == 2, "org token issued a token into a collector.db nobody serves"


def _with_a_head(data: Path) -> str:
    """DATA/collector.db with one device whose witnessed head is at seq 2 (one
    bundle accepted); returns the device."""
    registry = Registry.open(data)
    try:
        (token,) = registry.issue_tokens(1)
        device = registry.enroll(token, os.urandom(32)).device
        registry.accept(
            name="c" * 64,
            device=device,
            size=10,
            base=Head(0, GENESIS),
            head=Head(2, "a" * 64),
            when="2026-12-06T00:00:00Z",
        )
    finally:
        registry.close()
    return device


def test_a_rerun_does_not_take_a_database_with_another_head_for_a_device(
    tmp_path: Path, postgres: Postgres
) -> None:
    """A database holding this state's device at the same seq with another hash
    (a forked ledger: neither this state nor the fleet gone on from it) is not
    "already there": the rerun refuses and collector.db stays (removing it would
    leave the device's next bundle, built on the head it was witnessed at,
    refused by the fleet)."""
    data = tmp_path / "data"
    device = _with_a_head(data)
    url = postgres.new_database()
    env = {**os.environ, faults.TESTING: "1", faults.ENV: "state.copied"}
    killed = ct("org", "move-state", "--data", str(data), "--to", url, env=env, check=False)
    assert killed.returncode == -9
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE devices SET head_hash = %s WHERE device = %s", ("b" * 64, device))
    again = ct("org", "move-state", "--data", str(data), "--to", url, "--json", check=False)
    assert again.returncode == 2, f"taken as this state: {again.stdout}"
    assert (data / DB_NAME).is_file()


def test_a_refused_target_is_left_as_it_was(tmp_path: Path, postgres: Postgres) -> None:
    """A database holding any other state is refused with exit 2 and nothing
    changes on either side: a partly filled one (a token row, no witness key
    recorded yet) is not given DATA's witness key as its fleet's."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    open_state(tmp_path / "schema", url).close()  # the tables, empty
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tokens(hash, created) VALUES (%s, %s)", ("d" * 64, "then"))
    refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert refused.returncode == 2
    assert "not this one" in refused.stderr
    with psycopg.connect(url) as conn:
        ((key,),) = conn.execute("SELECT public_key FROM witness").fetchall()
    assert key is None, "the refused database now names DATA's witness key as its fleet's"


def test_a_finished_move_names_the_state_its_state_json_names(
    tmp_path: Path, postgres: Postgres
) -> None:
    """Run again with another --to after it finished, the move names the database
    DATA's state.json names, the first, not the --to given."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    first, other = postgres.new_database(), postgres.new_database()
    ct("org", "move-state", "--data", str(data), "--to", first)
    again = ct("org", "move-state", "--data", str(data), "--to", other, check=False)
    assert again.returncode == 2
    assert json.loads((data / STATE_FILE).read_text())["state"] == first
    assert other not in again.stderr, again.stderr
