"""Master key rotation: every wrapped key follows, a crash at any step leaves a
home that opens, and a copy of the old key opens nothing afterwards."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from cryptography.exceptions import InvalidTag

from cleartrace.cli import main
from cleartrace.control import ControlServer
from cleartrace.errors import WrongKey
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store.crypto import unseal, unwrap_key
from cleartrace.store.rotation import master_opens
from cleartrace.store.wrapped import WRAPPED_BY_MASTER
from tests.support.cli import ct
from tests.support.home_probe import kinds, text_of, wrapped_keys
from tests.support.sessions import typed_session

STEPS = ["staged", "rewrapped", "committed", "promoted"]


@pytest.fixture
def two_sessions(private_home: Paths) -> list[str]:
    assert ct("consent", "give", "--category", "keys", "--category", "app_focus").returncode == 0
    # A personal exclusion: the exclusions key is a named key the master key wraps.
    assert ct("exclude", "add", "slack").returncode == 0
    return [typed_session(private_home, "first words"), typed_session(private_home, "second")]


def test_rotation_rewraps_every_key_and_a_copy_of_the_old_key_opens_nothing(
    private_home: Paths, two_sessions: list[str]
) -> None:
    old_master = (private_home.keys_dir / "master.key").read_bytes()
    old_wrapped = wrapped_keys(private_home)
    done = ct("keys", "rotate", check=False)
    assert done.returncode == 0, done.stderr
    assert "2 session keys rewrapped" in done.stderr
    assert old_master.hex() not in done.stderr
    new_master = (private_home.keys_dir / "master.key").read_bytes()
    assert new_master != old_master
    assert not (private_home.keys_dir / "master.key.next").exists()
    assert [text_of(s) for s in two_sessions] == ["first words", "second"]
    for sid, blob in wrapped_keys(private_home).items():
        with pytest.raises(InvalidTag):
            unwrap_key(old_master, sid, blob)
        assert unwrap_key(new_master, sid, blob) == unwrap_key(old_master, sid, old_wrapped[sid])
    with sqlite3.connect(private_home.db) as conn:
        assert not master_opens(conn, old_master)
        for kind in WRAPPED_BY_MASTER:  # whatever else the master key seals, too
            rows = conn.execute(kind.select).fetchall()
            assert rows, kind.what
            for row_id, sealed in rows:
                with pytest.raises(InvalidTag):
                    unseal(old_master, bytes(sealed), kind.aad(str(row_id)))
                unseal(new_master, bytes(sealed), kind.aad(str(row_id)))
    on_disk = b"".join(
        p.read_bytes() for p in private_home.home.iterdir() if p.name.startswith("store.db")
    )
    assert not any(blob in on_disk for blob in old_wrapped.values())
    assert kinds(private_home)[-1] == "key.rotated"
    with sqlite3.connect(private_home.db) as conn:
        (last,) = conn.execute("SELECT record FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    assert set(json.loads(last)) == {"v", "seq", "time", "kind", "prev", "sig"}
    exported = private_home.home.parent / "ledger.jsonl"
    assert ct("ledger", "export", "--out", str(exported)).returncode == 0
    assert ct("audit", "verify", str(exported)).returncode == 0


_ROTATE_AND_STOP = textwrap.dedent(
    """
    import sys, time
    from cleartrace.home import Home
    from cleartrace.paths import Paths
    from cleartrace.store.rotation import rotate_master_key

    def step(name):
        if name == sys.argv[1]:
            print(name, flush=True)
            time.sleep(120)

    home = Home.open(Paths.from_env(), create=False)
    rotate_master_key(
        home.paths, home.keys,
        record=lambda conn: home.ledger.append_in(conn, "key.rotated"), step=step,
    )
    """
)


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_any_step_of_a_rotation_leaves_a_home_that_opens(
    private_home: Paths, two_sessions: list[str], step: str
) -> None:
    old_master = (private_home.keys_dir / "master.key").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", _ROTATE_AND_STOP, step],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == step
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    committed = STEPS.index(step) >= STEPS.index("committed")
    # The next command finds the interrupted rotation, finishes or undoes it, and opens.
    assert [text_of(s) for s in two_sessions] == ["first words", "second"]
    assert not (private_home.keys_dir / "master.key.next").exists()
    master = (private_home.keys_dir / "master.key").read_bytes()
    assert (master != old_master) is committed
    assert ("key.rotated" in kinds(private_home)) is committed
    for sid, blob in wrapped_keys(private_home).items():
        unwrap_key(master, sid, blob)
    # and a rotation after it works as ever
    again = ct("keys", "rotate", check=False)
    assert again.returncode == 0, again.stderr
    assert [text_of(s) for s in two_sessions] == ["first words", "second"]


def test_a_process_holding_the_old_key_cannot_wrap_a_new_session_with_it(
    private_home: Paths, two_sessions: list[str]
) -> None:
    stale = Home.open(private_home, create=False)
    try:
        assert ct("keys", "rotate").returncode == 0
        with pytest.raises(WrongKey, match="changed by another process"):
            stale.store.begin_session(time.time_ns(), 0)
    finally:
        stale.close()
    assert len(wrapped_keys(private_home)) == 2


def test_rotation_is_refused_while_a_recorder_runs(
    private_home: Paths, two_sessions: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = (private_home.keys_dir / "master.key").read_bytes()
    server = ControlServer(private_home.socket, lambda req: {})
    try:
        assert main(["keys", "rotate"]) == 2
    finally:
        server.close()
    assert "a recorder is running" in capsys.readouterr().err
    assert (private_home.keys_dir / "master.key").read_bytes() == before
