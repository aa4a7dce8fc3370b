"""`org move-state`: interleavings and kill windows of a move seen from the
commands beside it, on a real DATA/collector.db and a database on the
session's throwaway PostgreSQL cluster.

A kill -9 at a point the move has no fault point for is stood in for by the
step raising there (what is on disk afterwards is the same: everything before
it done and durable, nothing after it); an interleaving of two processes is
made deterministic by running the move, in this process, at the point where
the other command would have been overtaken by it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cleartrace.errors import UsageError
from cleartrace.org import registry_db, state_move
from cleartrace.org.registry_db import DB_NAME
from cleartrace.org.state import STATE_FILE, open_state
from cleartrace.org.state_move import KEPT_NAME, move_state
from cleartrace.org.witness import WITNESS_KEY, WITNESS_PUB
from tests.support.cli import ct
from tests.support.org_process import issue_tokens
from tests.support.postgres import Postgres


class _Killed(Exception):
    """Stands in for the SIGKILL of the move at a step."""


def _token_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        ((count,),) = conn.execute("SELECT count(*) FROM tokens").fetchall()
    return int(count)


def _killed_before_unlink(data: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A move killed after its SQLite COMMIT (the file marked), before the unlink."""

    def killed(_: Path) -> None:
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(state_move, "_remove_file", killed)
        with pytest.raises(_Killed):
            move_state(data, url)


def test_a_command_opening_the_file_as_the_move_removes_it_makes_no_new_one(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`org token --data DATA` (it takes no lock) checks that collector.db is
    there, and is overtaken by the whole move before it connects: the connect
    must not make an empty collector.db beside state.json (a token issued there
    enrols nothing, and `org serve --data DATA` would then serve that empty
    registry instead of refusing)."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    real = registry_db.translate_errors
    overtaken: list[bool] = []

    @contextlib.contextmanager
    def move_first(path: Path) -> Iterator[None]:
        if not overtaken:  # open_db's first step after its exists() check
            overtaken.append(True)
            move_state(data, url)
        with real(path):
            yield

    monkeypatch.setattr(registry_db, "translate_errors", move_first)
    issued: list[str] = []
    try:
        issued = issue_tokens(data)
    except UsageError:
        pass  # the right outcome: refused, naming the state
    finally:
        monkeypatch.undo()
    assert overtaken
    assert issued == [], "a token issued into a registry no collector serves"
    assert (data / STATE_FILE).is_file()
    assert not (data / DB_NAME).exists(), "a new collector.db beside state.json"
    assert _token_count(url) == 2


def test_a_rerun_on_a_marked_file_finishes_the_move(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the mark, before the unlink: DATA refuses plain commands,
    naming the state, and the rerun (same --to) finishes, keeping a copy that
    serves again once renamed back."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    _killed_before_unlink(data, url, monkeypatch)
    refused = ct("org", "token", "--data", str(data), check=False)
    assert refused.returncode == 2
    assert f"give --state '{url}'" in refused.stderr
    done = ct("org", "move-state", "--data", str(data), "--to", url, "--json")
    assert json.loads(done.stdout)["copied"] is False
    assert not (data / DB_NAME).exists()
    (data / KEPT_NAME).rename(data / DB_NAME)
    (data / STATE_FILE).unlink()
    ct("org", "token", "--data", str(data))
    listed = ct("org", "devices", "--data", str(data), "--json")
    assert json.loads(listed.stdout) == []


def test_a_rerun_on_a_marked_file_does_not_copy_it_into_another_database(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the mark: the state is the fleet's at the URL state.json
    names, and the marked file is a snapshot the fleet may have gone on from.
    A rerun given another (empty) database must not copy that snapshot into it
    as a second fleet state, nor point state.json there."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    _killed_before_unlink(data, url, monkeypatch)
    # The fleet goes on at `url` meanwhile, signing with this collector's key.
    (tmp_path / "fleet").mkdir(mode=0o700)
    for name in (WITNESS_KEY, WITNESS_PUB):
        shutil.copy2(data / name, tmp_path / "fleet" / name)
    fleet = open_state(tmp_path / "fleet", url)
    try:
        fleet.issue_tokens(1)
    finally:
        fleet.close()
    other = postgres.new_database()
    rerun = ct("org", "move-state", "--data", str(data), "--to", other, check=False)
    assert rerun.returncode == 2, rerun.stderr
    with psycopg.connect(other) as conn:
        tables = conn.execute("SELECT to_regclass('tokens')").fetchall()
    assert tables == [(None,)] or _token_count(other) == 0
    assert json.loads((data / STATE_FILE).read_text())["state"] == url


def test_a_move_killed_after_state_json_leaves_no_collector_serving_the_file(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after state.json is written, before the COMMIT with the mark:
    DATA holds an unmarked collector.db beside a state.json naming the fleet's
    copy. `org token --data DATA` must not issue a token into the file while
    the fleet serves the copy (refusing, pointing at a rerun or the state)."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    real = state_move.remember_url

    def remembered_then_killed(where: Path, state: str) -> None:
        real(where, state)
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(state_move, "remember_url", remembered_then_killed)
        with pytest.raises(_Killed):
            move_state(data, url)
    assert (data / STATE_FILE).is_file()
    assert (data / DB_NAME).is_file()
    issued = ct("org", "token", "--data", str(data), check=False)
    assert issued.returncode == 2, "a token issued into a file whose state the fleet serves"


def test_a_collector_that_opened_the_file_before_the_move_is_told_where_the_state_went(
    tmp_path: Path, postgres: Postgres
) -> None:
    """`org serve --data DATA` opens the file before it takes DATA/collector.lock:
    opened just before the move took the lock, it gets the lock once the move is
    done and reads its devices (the head files' rewrite at start-up). It must
    refuse as every other command does, naming the state, not fail on a file it
    cannot open."""
    data = tmp_path / "data"
    issue_tokens(data, n=2)
    url = postgres.new_database()
    registry = open_state(data)
    try:
        move_state(data, url)
        with pytest.raises(UsageError, match="was moved to PostgreSQL"):
            registry.devices()
    finally:
        registry.close()
    assert not (data / DB_NAME).exists()


def test_a_move_from_a_relative_path_with_odd_characters_reads_and_refuses_alike(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spaces, % and # in DATA (the readers open a file: URI), given relative."""
    monkeypatch.chdir(tmp_path)
    data = Path("a b%41#c?d") / "data"
    issue_tokens(data, n=2)
    assert registry_db.read_devices(data) == {}
    url = postgres.new_database()
    done = ct("org", "move-state", "--data", str(data), "--to", url, "--json")
    assert json.loads(done.stdout)["tokens"] == 2
    with pytest.raises(UsageError, match="PostgreSQL"):
        registry_db.read_devices(data)
    (data / KEPT_NAME).rename(data / DB_NAME)
    assert registry_db.read_devices(data) == {}
    assert len(registry_db.read_org_ledger(data) or []) == 1
