"""A real X server (Xvfb), an EWMH window manager, xdotool and test windows."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@dataclass
class XServer:
    display: str
    pid: int


def _kill(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def xserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[XServer]:
    """A fresh Xvfb per test; DISPLAY points at it."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed; 'make test' installs it (package xvfb)")
    read_fd, write_fd = os.pipe()
    # Autorepeat would turn a key held down on a busy machine into extra
    # presses (as it would for a person); tests need exactly what they type.
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
            "-ardelay",
            "60000",
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    # Xvfb writes the number and the newline separately; keep the pipe open
    # until teardown or it may die writing to a closed pipe.
    number = b""
    deadline = time.monotonic() + 10
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        number += os.read(read_fd, 16)
    display = f":{number.decode().strip()}"
    monkeypatch.setenv("DISPLAY", display)
    try:
        yield XServer(display, proc.pid)
    finally:
        _kill(proc)
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def wm(xserver: XServer) -> Iterator[None]:
    """matchbox-window-manager: publishes _NET_ACTIVE_WINDOW on focus changes."""
    from Xlib.display import Display

    proc = subprocess.Popen(
        ["matchbox-window-manager", "-use_titlebar", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    display = Display(xserver.display)
    try:
        atom = display.intern_atom("_NET_SUPPORTED")
        deadline = time.monotonic() + 10
        while display.screen().root.get_full_property(atom, 0) is None:
            if time.monotonic() > deadline:
                pytest.fail("matchbox-window-manager did not start")
            time.sleep(0.05)
    finally:
        display.close()
    yield
    _kill(proc)


@pytest.fixture
def xdo(xserver: XServer) -> Callable[..., str]:
    def run(*args: str) -> str:
        done = subprocess.run(
            ["xdotool", *args], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"xdotool {' '.join(args)} failed on {xserver.display}: {done.stderr.strip()}"
            )
        return done.stdout.strip()

    return run


@pytest.fixture
def app_window(xserver: XServer) -> Iterator[Callable[[str, str], str]]:
    """Opens a window with the given WM_CLASS and title; returns its id."""
    procs: list[subprocess.Popen[str]] = []

    def open_window(wm_class: str, title: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "xwindow.py"), wm_class, title],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        return proc.stdout.readline().strip()

    yield open_window
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        _kill(proc)
        assert proc.stdout is not None
        proc.stdout.close()
