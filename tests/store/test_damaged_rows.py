"""A damaged row in the store file is a StoreCorrupt naming the file and the fix, never a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from cleartrace.errors import StoreCorrupt
from cleartrace.events import Kind
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.service import Service

#: A ledger row no longer JSON, and one JSON but not a record (an object).
DAMAGE = ["{not json", "[1, 2, 3]"]


def _cleartrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleartrace", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _damage_ledger(paths: Paths, text: str) -> None:
    conn = sqlite3.connect(paths.db)
    try:
        with conn:
            conn.execute("UPDATE ledger SET record=? WHERE seq=1", (text,))
    finally:
        conn.close()


@pytest.fixture
def consented(private_home: Paths) -> Paths:
    given = _cleartrace("consent", "give", "--category", "keys", "--category", "app_focus")
    assert given.returncode == 0, given.stderr
    return private_home


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("command", [["status"], ["ledger", "show"], ["consent", "show"]])
def test_a_damaged_ledger_row_is_store_corrupt_naming_the_file_and_the_fix(
    consented: Paths, damage: str, command: list[str]
) -> None:
    _damage_ledger(consented, damage)
    done = _cleartrace(*command)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert "unexpected error" not in done.stderr
    assert str(consented.db) in done.stderr
    assert "restore a backup" in done.stderr
    assert damage not in done.stderr


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_tray_ledger_view_of_a_damaged_row_is_store_corrupt(
    consented: Paths, damage: str
) -> None:
    _damage_ledger(consented, damage)
    service = Service(consented)
    try:
        with pytest.raises(StoreCorrupt, match="restore a backup") as caught:
            service.ledger()
        assert str(consented.db) in str(caught.value)
    finally:
        service.close()


@pytest.mark.parametrize(
    ("column", "damage"),
    [("counts", "{not json"), ("counts", "[1]"), ("state", "approvedd")],
)
def test_a_damaged_session_row_is_store_corrupt_when_listed(
    consented: Paths, column: str, damage: str
) -> None:
    home = Home.open(consented, create=False)
    try:
        handle = home.store.begin_session(time.time_ns(), 0)
        home.store.append_chunk(handle, [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))])
        home.store.end_session(handle, time.time_ns())
    finally:
        home.close()
    conn = sqlite3.connect(consented.db)
    try:
        with conn:
            conn.execute(f"UPDATE sessions SET {column}=?", (damage,))  # noqa: S608 - test's own names
    finally:
        conn.close()
    done = _cleartrace("sessions", "list")
    assert done.returncode == 2, done.stderr
    assert str(consented.db) in done.stderr
    assert f"the {column} of session {handle.id[:12]}" in done.stderr
    assert damage not in done.stderr
