"""A real X server (Xvfb), an EWMH window manager, xdotool and test windows.

Fixtures for every test that needs a display: the capture backend, the
recorder, the tray. Each test gets its own Xvfb, killed by PID at teardown; a
test that asks for `xserver` is marked `xserver` (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.support import SUPPORT
from tests.support.waiting import wait_for


def _kill(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM, a grace period, then SIGKILL: by PID, never by name."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class XServer:
    """A running Xvfb; `wm` is True while a window manager runs on it."""

    display: str
    pid: int
    proc: subprocess.Popen[bytes] = field(repr=False)
    wm: bool = False

    def stop(self) -> None:
        """Shut the server down now (teardown does it otherwise)."""
        _kill(self.proc)


def _require(program: str, package: str) -> None:
    if shutil.which(program) is None:
        pytest.fail(
            f"{program} is not installed; 'make test' installs it (Debian package {package})"
        )


@contextlib.contextmanager
def start_xvfb(*extra: str) -> Iterator[XServer]:
    """Start Xvfb on a free display number and stop it on exit."""
    _require("Xvfb", "xvfb")
    read_fd, write_fd = os.pipe()
    # Autorepeat would turn a key held down on a busy machine into extra
    # presses (as it would for a person); tests need exactly what they type.
    # -noreset: a server whose last client leaves resets, closing connections
    # that arrive meanwhile; a desktop session always has clients, Xvfb here not.
    proc = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24"),
            *("-nolisten", "tcp", "-ardelay", "60000", "-noreset", *extra),
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    try:
        # Xvfb writes the number and the newline in two writes; keep the pipe
        # open until teardown or it may die writing to a closed pipe.
        number = b""
        deadline = time.monotonic() + 10
        while not number.endswith(b"\n"):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"Xvfb did not start (exit status {proc.poll()})")
            number += os.read(read_fd, 16)
        yield XServer(f":{number.decode().strip()}", proc.pid, proc)
    finally:
        _kill(proc)
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def xserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[XServer]:
    """A fresh Xvfb per test (ready in ~0.1 s); DISPLAY points at it."""
    with start_xvfb() as server:
        monkeypatch.setenv("DISPLAY", server.display)
        yield server


@pytest.fixture
def wm(xserver: XServer) -> Iterator[None]:
    """matchbox-window-manager: publishes _NET_ACTIVE_WINDOW on focus changes."""
    from Xlib.display import Display

    _require("matchbox-window-manager", "matchbox-window-manager")
    proc = subprocess.Popen(
        ["matchbox-window-manager", "-use_titlebar", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        display = Display(xserver.display)
        try:
            atom = display.intern_atom("_NET_SUPPORTED")

            def ready() -> bool:
                if proc.poll() is not None:
                    pytest.fail(f"matchbox-window-manager exited (status {proc.returncode})")
                return display.screen().root.get_full_property(atom, 0) is not None

            wait_for(ready, timeout=10, what="matchbox-window-manager to publish _NET_SUPPORTED")
        finally:
            display.close()
        xserver.wm = True
        yield
    finally:
        xserver.wm = False
        _kill(proc)


@pytest.fixture
def xdo(xserver: XServer) -> Callable[..., str]:
    """Run xdotool on the test display; fail the test if it fails."""
    _require("xdotool", "xdotool")

    def run(*args: str) -> str:
        env = {**os.environ, "DISPLAY": xserver.display}
        done = subprocess.run(
            ["xdotool", *args], capture_output=True, text=True, timeout=30, check=False, env=env
        )
        if done.returncode != 0:
            raise AssertionError(
                f"xdotool {' '.join(args)} failed on {xserver.display}: {done.stderr.strip()}"
            )
        return done.stdout.strip()

    return run


@pytest.fixture
def app_window(xserver: XServer, xdo: Callable[..., str]) -> Iterator[Callable[..., str]]:
    """`app_window(cls, title, instance=None, *, extra=(), focus=True)` opens a window
    (no WM_CLASS when `cls` is None) and focuses it; returns its id.

    Under a window manager the window is activated (EWMH), without one it gets
    the input focus directly. `extra` are more xwindow.py options.
    """
    procs: list[subprocess.Popen[str]] = []

    def open_window(
        wm_class: str | None,
        title: str,
        instance: str | None = None,
        *,
        extra: tuple[str, ...] = (),
        focus: bool = True,
    ) -> str:
        args = ["--title", title, *extra]
        if wm_class is not None:
            args += ["--class", wm_class]
        if instance is not None:
            args += ["--instance", instance]
        proc = subprocess.Popen(
            [sys.executable, str(SUPPORT / "xwindow.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DISPLAY": xserver.display},
        )
        procs.append(proc)
        assert proc.stdout is not None
        window = proc.stdout.readline().strip()
        if not window:
            pytest.fail(f"xwindow.py did not map a window (exit status {proc.wait(5)})")
        if focus:
            xdo("windowactivate" if xserver.wm else "windowfocus", "--sync", window)
        return window

    yield open_window
    for proc in procs:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()
        _kill(proc)
        proc.stdout.close()


@pytest.fixture
def typing_window(app_window: Callable[..., str]) -> str:
    """An ordinary window with the keyboard focus, for tests that just type.

    A bare X server starts with the focus on PointerRoot, where keys go to
    whatever window is under the pointer with no focus event: the recorder
    treats that as unknown and keeps none of them.
    """
    return app_window("Xterm", "shell")
