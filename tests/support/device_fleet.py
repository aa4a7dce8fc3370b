"""Real devices for whole-fleet journeys: each its own home and runtime dir, its
recorder on its own Xvfb, everything it does through the `cleartrace` CLI.

The per-test `private_home` and `xserver` fixtures give one device per test;
a fleet shared by a module's tests needs several homes side by side, so each
`Device` carries its own environment and passes it to every process it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleartrace.control import request
from cleartrace.paths import Paths
from tests.support import SUPPORT
from tests.support.cli import CLI, ct
from tests.support.waiting import wait_for
from tests.support.xserver import XServer, start_xvfb

__all__ = ["Device", "Recorder", "device"]


@dataclass
class Recorder:
    """`cleartrace record` of one device, started once its hooks are in."""

    device: Device
    proc: subprocess.Popen[str]

    def status(self) -> dict[str, Any]:
        reply: dict[str, Any] = request(self.device.paths.socket, "status")["status"]
        return reply

    def hooks(self) -> set[str]:
        return set(self.status()["hooks"])

    def stop(self) -> None:
        """Stop it like Ctrl+C and wait until it has closed its session."""
        self.proc.send_signal(2)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


@dataclass
class Device:
    """One person's machine: a home, a runtime dir, a display with a text window."""

    name: str
    paths: Paths
    x: XServer
    env: dict[str, str]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def ct(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ct(*args, env=self.env, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.ct(*args, "--json").stdout)

    def xdo(self, *args: str) -> None:
        done = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, f"xdotool {' '.join(args)}: {done.stderr}"

    def record(self) -> Recorder:
        proc = subprocess.Popen(
            [*CLI, "record"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.procs.append(proc)
        rec = Recorder(self, proc)
        wait_for(lambda: bool(rec.status()["hooks"]), timeout=30, what=f"{self.name}'s recorder")
        return rec

    def wait_keys(self, rec: Recorder, presses: int) -> None:
        """Until `presses` key presses (and their releases) of this session are stored."""
        wait_for(
            lambda: rec.status()["counts"].get("keys", 0) >= 2 * presses,
            timeout=30,
            what=f"{presses} key presses stored on {self.name}",
        )

    def sessions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.json("sessions", "list")
        return found

    def ledger(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.json("ledger", "show")
        return found


def _window(x: XServer, env: dict[str, str]) -> subprocess.Popen[str]:
    """An editor-like window (class Gedit) holding the keyboard focus."""
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "xwindow.py"), "--title", "notes", "--class", "Gedit"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    window = proc.stdout.readline().strip()
    assert window, "xwindow.py did not map a window"
    subprocess.run(["xdotool", "windowactivate", "--sync", window], env=env, check=True)
    return proc


def _wm(env: dict[str, str]) -> subprocess.Popen[str]:
    """matchbox-window-manager, once it publishes _NET_SUPPORTED (the focus watcher needs it)."""
    from Xlib.display import Display

    proc = subprocess.Popen(
        ["matchbox-window-manager", "-use_titlebar", "no"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    display = Display(env["DISPLAY"])
    try:
        atom = display.intern_atom("_NET_SUPPORTED")
        wait_for(
            lambda: display.screen().root.get_full_property(atom, 0) is not None,
            timeout=10,
            what="the window manager",
        )
    finally:
        display.close()
    return proc


@contextlib.contextmanager
def device(name: str, root: Path) -> Iterator[Device]:
    """A device named `name`: its home under `root`, its own Xvfb, window manager and
    a focused window; every process it started is stopped (by PID) on exit."""
    for program in ("Xvfb", "xdotool", "matchbox-window-manager"):
        assert shutil.which(program), f"{program} is not installed ('make sysdeps')"
    home = root / name
    with tempfile.TemporaryDirectory(prefix="ct-run-") as runtime, start_xvfb() as x:
        os.chmod(runtime, 0o700)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "CLEARTRACE_HOME")
        }
        env.update(
            CLEARTRACE_HOME=str(home),
            XDG_RUNTIME_DIR=runtime,
            CLEARTRACE_KEYSTORE="file",
            DISPLAY=x.display,
            HOME=str(root / f"{name}-user"),
        )
        made = Device(name, Paths(home, Path(runtime)), x, env)
        made.procs.append(_wm(env))
        window = _window(x, env)
        made.procs.append(window)
        try:
            yield made
        finally:
            for proc in made.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                for pipe in (proc.stdin, proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
