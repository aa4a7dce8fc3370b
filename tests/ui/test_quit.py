"""Quitting the tray ends the process cleanly, every time.

The tray is started as a person starts it (`cleartrace`, Qt on a real X
server), with consent given, so every thread a day's use has is running: the
recorder with its pynput listeners and focus watcher, the control socket, the
background uploader, the session bus listener and the pause hotkey. It is
then quit through the menu's Quit path (`Tray.quit`; SIGTERM at logout is
mapped to the same slot) many times in a row. A thread still running Python
code while the interpreter finalises shows as "Fatal Python error" and exit
status 134; this test is what would see it. The suite quits 20 times (each
start is a whole tray's start-up, about a second and a half of CPU); a longer
run after a change to shutdown: `CLEARTRACE_QUITS=200 pytest tests/ui/test_quit.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cleartrace.paths import Paths
from cleartrace.ui.single_instance import instance_name
from tests.support.cli import CLI, ct
from tests.support.recording import status
from tests.support.waiting import wait_for
from tests.support.xserver import XServer

QUITS = int(os.environ.get("CLEARTRACE_QUITS", "20"))


def _recording(paths: Paths, tray: subprocess.Popen[str]) -> bool:
    assert tray.poll() is None, tray.communicate()
    if not paths.socket.exists():
        return False
    try:
        reply = status(paths)
    except Exception:  # the socket exists but is not serving yet
        return False
    return bool(reply["hooks"])


def _pythons_of(home: Path) -> list[int]:
    """Python processes (other than this one) started with this home: a tray,
    or anything it started, still running."""
    marker = f"CLEARTRACE_HOME={home}".encode()
    python = os.path.realpath(sys.executable)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.path.realpath(entry / "exe") != python:
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # it ended meanwhile, or is not ours to read
            continue
    return found


def _start_and_quit(paths: Paths, env: dict[str, str]) -> tuple[int, str]:
    tray = subprocess.Popen(
        [*CLI], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: _recording(paths, tray), timeout=60, what="the tray recording")
        assert tray.pid in _pythons_of(paths.home)  # what the check after the quit looks for
        tray.send_signal(signal.SIGTERM)  # the slot the menu's Quit calls
        _, err = tray.communicate(timeout=60)
    finally:
        if tray.poll() is None:
            tray.kill()
            tray.communicate()
    return tray.returncode, err


def test_many_quits_in_a_row_end_cleanly(
    private_home: Paths, xserver: XServer, session_bus: str
) -> None:
    ct("consent", "give", "--all")
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # Qt on the X server, as on a desktop
    env["PYTHONFAULTHANDLER"] = "1"  # a crash at exit prints every thread's stack
    for attempt in range(QUITS):
        code, err = _start_and_quit(private_home, env)
        assert code == 0, f"quit {attempt + 1} of {QUITS} exited {code}:\n{err}"
        assert "Fatal Python error" not in err, f"quit {attempt + 1}:\n{err}"
        assert "Traceback" not in err, f"quit {attempt + 1}:\n{err}"
        assert not private_home.socket.exists(), "the control socket was left behind"
        assert not Path(instance_name(private_home)).exists(), "the instance socket was left"
        assert not _pythons_of(private_home.home), "a process of the tray was left running"
