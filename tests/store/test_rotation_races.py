"""Master key rotation against other processes: a concurrent open or rotation
never loses the store, a process holding the old key is told to restart, and
the old wrapped keys do not outlive a rotation on disk unannounced."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from cleartrace.consent.exclusions import PersonalExclusions, add_exclusion
from cleartrace.errors import WrongKey
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.cli import CLI, ct
from tests.support.home_probe import kinds, text_of, wrapped_keys
from tests.support.sessions import typed_session

#: Rotates, and at the step named by argv[1] says so and waits for a line on stdin.
_ROTATE_AND_WAIT = textwrap.dedent(
    """
    import sys
    from cleartrace.home import Home
    from cleartrace.paths import Paths
    from cleartrace.store.rotation import rotate_master_key

    def step(name):
        if name == sys.argv[1]:
            print(name, flush=True)
            sys.stdin.readline()

    home = Home.open(Paths.from_env(), create=False)
    rotate_master_key(
        home.paths, home.keys,
        record=lambda conn: home.ledger.append_in(conn, "key.rotated"), step=step,
    )
    home.close()
    print("done", flush=True)
    """
)


#: The meta row that says the WAL may still hold values sealed by an old key.
CHECKPOINT_DUE = "checkpoint_due"


@pytest.fixture
def two_sessions(private_home: Paths) -> list[str]:
    assert ct("consent", "give", "--category", "keys", "--category", "app_focus").returncode == 0
    return [typed_session(private_home, "first words"), typed_session(private_home, "second")]


def paused_rotation(step: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ROTATE_AND_WAIT, step],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == step
    return proc


def resume(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    return out, err


def let_it_reach_the_rotation(other: subprocess.Popen[str]) -> None:
    """Give `other` time to start and reach the rotation in progress (a process
    that does not wait for it is done by then; one that waits is still there)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        other.wait(timeout=4)


def test_a_command_started_during_a_rotation_waits_for_it_and_loses_nothing(
    private_home: Paths, two_sessions: list[str]
) -> None:
    rotation = paused_rotation("staged")
    try:
        lister = subprocess.Popen(
            [*CLI, "sessions", "list"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        let_it_reach_the_rotation(lister)
    finally:
        resume(rotation)
    _out, err = lister.communicate(timeout=60)
    assert lister.returncode == 0, err
    assert not (private_home.keys_dir / "master.key.next").exists()
    assert [text_of(s) for s in two_sessions] == ["first words", "second"]
    assert kinds(private_home).count("key.rotated") == 1


def test_two_rotations_at_once_both_finish_and_the_store_still_opens(
    private_home: Paths, two_sessions: list[str]
) -> None:
    first = paused_rotation("staged")
    try:
        second = subprocess.Popen(
            [*CLI, "keys", "rotate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        let_it_reach_the_rotation(second)
    finally:
        resume(first)
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert not (private_home.keys_dir / "master.key.next").exists()
    assert [text_of(s) for s in two_sessions] == ["first words", "second"]
    assert kinds(private_home).count("key.rotated") == 2
    exported = private_home.home.parent / "ledger.jsonl"
    assert ct("ledger", "export", "--out", str(exported)).returncode == 0
    assert ct("audit", "verify", str(exported)).returncode == 0


def test_a_process_holding_the_old_key_is_told_to_restart_not_to_restore(
    private_home: Paths, two_sessions: list[str]
) -> None:
    stale = Home.open(private_home, create=False)
    try:
        assert ct("keys", "rotate").returncode == 0
        with pytest.raises(WrongKey, match="restart"):
            stale.store.read_events(two_sessions[0])
        with pytest.raises(WrongKey, match="restart"):
            stale.store.list_sessions()
        # The first personal exclusion, added by a tray that still holds the
        # old key, is refused rather than wrapped with a key that opens nothing.
        with pytest.raises(WrongKey, match="restart"):
            PersonalExclusions.open(stale.ledger, stale.keys.master)
    finally:
        stale.close()
    fresh = Home.open(private_home, create=False)
    try:
        personal = PersonalExclusions.open(fresh.ledger, fresh.keys.master)
        add_exclusion(fresh.ledger, personal, "slack")
    finally:
        fresh.close()
    assert ct("keys", "rotate").returncode == 0
    again = Home.open(private_home, create=False)
    try:
        assert PersonalExclusions.open(again.ledger, again.keys.master).names() == ["slack"]
    finally:
        again.close()


def on_disk(paths: Paths) -> bytes:
    """The store's files, read by another process: closing a file this process
    opened would drop every SQLite lock it holds on it (POSIX locks are per
    process), and with them the readers these tests keep open."""
    files = sorted(str(p) for p in paths.home.iterdir() if p.name.startswith("store.db"))
    return subprocess.run(["cat", *files], capture_output=True, check=True).stdout


def test_old_wrapped_keys_held_in_the_wal_by_a_reader_are_announced_and_emptied_later(
    private_home: Paths, two_sessions: list[str]
) -> None:
    old_wrapped = wrapped_keys(private_home)
    # An idle connection keeps SQLite from emptying the WAL when the others close.
    idle = sqlite3.connect(private_home.db)
    idle.execute("SELECT 1 FROM meta").fetchone()
    reader = sqlite3.connect(private_home.db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sessions").fetchone()  # holds a snapshot
        done = ct("keys", "rotate", check=False)
        assert done.returncode == 0, done.stderr
        if any(blob in on_disk(private_home) for blob in old_wrapped.values()):
            assert "opens nothing now" not in done.stderr
            assert "until" in done.stderr, done.stderr
        with sqlite3.connect(private_home.db) as conn:
            due = conn.execute("SELECT 1 FROM meta WHERE key=?", (CHECKPOINT_DUE,)).fetchone()
        assert due is not None
        reader.execute("COMMIT")
        # The next start empties the WAL the reader held.
        assert ct("sessions", "list").returncode == 0
        assert not any(blob in on_disk(private_home) for blob in old_wrapped.values())
        with sqlite3.connect(private_home.db) as conn:
            due = conn.execute("SELECT 1 FROM meta WHERE key=?", (CHECKPOINT_DUE,)).fetchone()
        assert due is None
    finally:
        reader.close()
        idle.close()


def test_finishing_an_interrupted_rotation_empties_the_wal(
    private_home: Paths, two_sessions: list[str]
) -> None:
    old_wrapped = wrapped_keys(private_home)
    idle = sqlite3.connect(private_home.db)
    idle.execute("SELECT 1 FROM meta").fetchone()
    try:
        rotation = paused_rotation("committed")
        rotation.kill()
        rotation.communicate(timeout=30)
        assert any(blob in on_disk(private_home) for blob in old_wrapped.values())
        assert ct("sessions", "list").returncode == 0  # finishes the rotation
        assert not any(blob in on_disk(private_home) for blob in old_wrapped.values())
    finally:
        idle.close()


def test_a_plaintext_exclusion_list_is_sealed_by_any_command_and_leaves_no_file(
    private_home: Paths,
) -> None:
    home = Home.open(private_home, create=True)
    home.close()
    with sqlite3.connect(private_home.db) as conn:  # as a version before app tags left it
        conn.execute("CREATE TABLE exclusions (app TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO exclusions(app) VALUES ('signal-desktop')")
    conn.close()
    idle = sqlite3.connect(private_home.db)  # keeps SQLite from emptying the WAL on close
    idle.execute("SELECT 1 FROM meta").fetchone()
    try:
        # A command that never reads the exclusion list still moves it.
        assert ct("sessions", "list").returncode == 0
        assert b"signal-desktop" not in on_disk(private_home)
    finally:
        idle.close()
    home = Home.open(private_home, create=False)
    try:
        assert PersonalExclusions.open(home.ledger, home.keys.master).names() == ["signal-desktop"]
    finally:
        home.close()
