"""A full disk under the store: every command says so, on reads and deletes too."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleartrace.errors import DiskFull
from cleartrace.events import Kind, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.cli import ct


@pytest.fixture
def tiny_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CLEARTRACE_HOME on a 1 MiB tmpfs of its own: a disk that fills up."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    monkeypatch.setenv("CLEARTRACE_HOME", str(mount_point / "home"))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def record_session(text: str) -> str:
    home = Home.open(Paths.from_env(), create=False)
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


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_reads_and_deletes_on_a_full_disk_say_disk_full(tiny_home: Path) -> None:
    assert ct("consent", "give", "--category", "keys", "--category", "app_focus").returncode == 0
    session = record_session("kept safe")
    filler = fill(tiny_home)
    for args in (
        ("sessions", "list"),
        ("sessions", "show", session, "--text"),
        ("sessions", "delete", session),
        ("ledger", "show"),
        ("status",),
    ):
        done = ct(*args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        (line,) = done.stderr.splitlines()
        assert "disk is full" in line, (args, line)
    filler.unlink()
    shown = ct("sessions", "show", session, "--text", check=False)
    assert shown.returncode == 0, shown.stderr
    assert "kept safe" in shown.stdout


def test_an_open_store_reports_disk_full_on_reads_deletes_and_checkpoints(
    tiny_home: Path,
) -> None:
    assert ct("consent", "give", "--category", "keys", "--category", "app_focus").returncode == 0
    first, second = record_session("first one"), record_session("second one")
    home = Home.open(Paths.from_env(), create=False)
    try:
        filler = fill(tiny_home)
        attempts = {
            "list": home.store.list_sessions,
            "read": lambda: home.store.read_events(first),
            "ledger": home.ledger.records,
            "delete": lambda: home.store.delete_session(second),
            "approve": lambda: home.store.set_state(first, "approved"),
        }
        failed = []
        for name, attempt in attempts.items():
            try:
                attempt()  # reads may still work: their -shm pages are mapped already
            except DiskFull as exc:
                failed.append((name, "disk is full" in str(exc)))
        assert ("delete", True) in failed
        assert all(said for _name, said in failed)
        filler.unlink()
        assert home.store.read_events(first)
        # "nothing already stored was changed": the failed delete left the session whole
        assert second in {s.id for s in home.store.list_sessions()}
        assert home.store.read_events(second)
        assert "session.deleted" not in [r["kind"] for r in home.ledger.records()]
    finally:
        home.close()


def test_a_delete_whose_removal_finds_the_disk_full_is_done_and_the_store_still_opens(
    tiny_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert ct("consent", "give", "--category", "keys", "--category", "app_focus").returncode == 0
    keep = record_session("kept safe")
    # Many small chunks (one per flush, uncompacted): removing them zeroes many pages.
    home = Home.open(Paths.from_env(), create=False)
    handle = home.store.begin_session(time.time_ns(), 0)
    for i in range(60):
        if i % 10 == 0:
            home.store._checkpoint()  # the WAL would fill the small disk first
        text = f"line {i} of a long session"
        events = [
            (i * 100_000 + j, int(Kind.KEY_DOWN), keysym_of_char(ch), 0, 0, 0, None)
            for j, ch in enumerate(text)
        ]
        home.store.append_chunk(handle, events)
    big = handle.id
    home.store._finish(big, time.time_ns())
    home.store._checkpoint()
    filler = fill(tiny_home)
    try:
        size = filler.stat().st_size
        while True:
            # Free a little room at a time until the first commit of the delete fits.
            size -= 4096
            os.truncate(filler, size)
            try:
                home.store.delete_session(
                    big, lambda conn: home.ledger.append_in(conn, "session.deleted", session=big)
                )
            except DiskFull as exc:
                refused = str(exc)
            else:
                break
            assert "nothing already stored was changed" in refused
            # ...and nothing was: the session is there, its deletion not ledgered.
            assert big in {s.id for s in home.store.list_sessions()}
            assert "session.deleted" not in [r["kind"] for r in home.ledger.records()]
        assert "removed on a later start" in caplog.text  # the removal did find it full
        assert big not in {s.id for s in home.store.list_sessions()}
        assert [r["kind"] for r in home.ledger.records()].count("session.deleted") == 1
        home.close()
        # With the disk still (nearly) full, the home opens, the deleted session stays hidden.
        again = Home.open(Paths.from_env(), create=False)
        try:
            assert [s.id for s in again.store.list_sessions()] == [keep]
        finally:
            again.close()
    finally:
        filler.unlink()
    done = ct("sessions", "list", check=False)
    assert done.returncode == 0, done.stderr
    assert big[:12] not in done.stdout
    exported = tiny_home / "ledger.jsonl"
    assert ct("ledger", "export", "--out", str(exported)).returncode == 0
    assert ct("audit", "verify", str(exported)).returncode == 0
