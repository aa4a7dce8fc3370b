"""A recorder that runs out of disk: a clean error, and nothing stored before is lost."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import ct
from tests.support.recording import Recording

pytestmark = pytest.mark.xserver


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CLEARTRACE_HOME on a 2 MiB tmpfs of its own."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if "permission denied" in done.stderr.lower() or os.geteuid() != 0:
            pytest.skip(f"cannot mount a tmpfs here ({errno.errorcode[errno.EPERM]})")
        raise AssertionError(done.stderr)
    monkeypatch.setenv("CLEARTRACE_HOME", str(mount_point / "home"))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    # Unbuffered: a buffered file would retry its last write on close and raise there.
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_full_disk_while_recording_is_one_clear_line_and_keeps_earlier_data(
    small_disk: Path,
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    assert ct("consent", "give", "--category", "keys", "--category", "mouse_move").returncode == 0
    rec = start_recorder()
    proc = rec.proc
    xdo("type", "--delay", "10", "saved")
    rec.wait_stored("keys", 10, what="'saved' stored")
    filler = fill(small_disk)
    moves = []  # enough moves to need new pages, in one xdotool connection
    for i in range(300):
        moves += ["mousemove", str(i * 3 % 1200), str(i * 7 % 780), "sleep", "0.01"]
    xdo(*moves)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("cleartrace:")]
    assert any("disk is full" in line and "store.db" in line for line in lines), err
    assert "Traceback" not in err
    filler.unlink()
    listed = ct("sessions", "list", "--json", check=False)
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)
    shown = json.loads(
        ct("sessions", "show", session["id"], "--text", "--json", check=False).stdout
    )
    assert "saved" in "".join(s["text"] for s in shown["text"])
