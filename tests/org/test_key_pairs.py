"""Keys a service makes for itself on first use (org/key_pairs.py): processes that
start at once on one directory end with one key, not one each."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from multiprocessing.synchronize import Barrier
from pathlib import Path

from cleartrace.org import witness

_RACERS = 4


def _race(data: Path, start: Barrier, out: multiprocessing.SimpleQueue[bytes]) -> None:
    start.wait(timeout=30)
    out.put(witness.load_or_create(data).public_key().public_bytes_raw())


def test_processes_creating_the_witness_key_at_once_end_with_one_key(tmp_path: Path) -> None:
    # `org serve` and `org token` started together on a new data directory: a
    # key one of them signed with, then overwritten by another's, leaves head
    # files and org ledger records that no key on disk verifies.
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(_RACERS)
    out: multiprocessing.SimpleQueue[bytes] = ctx.SimpleQueue()
    racers = [ctx.Process(target=_race, args=(tmp_path, start, out)) for _ in range(_RACERS)]
    for racer in racers:
        racer.start()
    try:
        for racer in racers:
            racer.join(timeout=60)
    finally:
        for racer in racers:
            if racer.is_alive():
                racer.kill()
                racer.join()
    assert [racer.exitcode for racer in racers] == [0] * _RACERS
    used = {out.get() for _ in range(_RACERS)}
    on_disk = witness.load_or_create(tmp_path).public_key().public_bytes_raw()
    assert used == {on_disk}
    assert witness.load_public(tmp_path).public_bytes_raw() == on_disk
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_temporary_left_by_a_killed_creation_is_removed_at_the_next(tmp_path: Path) -> None:
    # A creation killed between writing its temporary and linking it leaves a
    # private key file nobody uses, next to the key, for good.
    left = tmp_path / f".witness.key.{_dead_pid()}.0badc0de.new"
    left.write_bytes(b'{"type": "cleartrace-witness-key", "ed25519": "left"}')
    live = tmp_path / f".witness.key.{os.getppid()}.0badc0de.new"  # a creation under way
    live.write_bytes(b"{}")
    witness.load_or_create(tmp_path)
    assert not left.exists()
    assert live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["witness.key", "witness.pub", live.name]
    )
