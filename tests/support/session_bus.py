"""A private D-Bus session bus, and a stand-in screen saver on it.

`session_bus`: a real `dbus-daemon --session` per test (DBUS_SESSION_BUS_ADDRESS
points at it), killed by PID. `screensaver`: a small service owning
`org.freedesktop.ScreenSaver` on that bus, as a desktop's locker does: it
answers `GetActive` and emits `ActiveChanged(b)` when told to (`lock()`,
`unlock()`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from jeepney import (
    DBusAddress,
    HeaderFields,
    MessageType,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

__all__ = ["StandInScreenSaver", "screensaver", "session_bus"]

NAME = "org.freedesktop.ScreenSaver"
PATH = "/org/freedesktop/ScreenSaver"


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh session bus; its address is returned and in the environment."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is missing: install the Debian package 'dbus' (make sysdeps)")
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            pytest.fail(f"dbus-daemon did not start (exit status {proc.wait(5)})")
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class StandInScreenSaver:
    """Owns org.freedesktop.ScreenSaver; a thread answers GetActive."""

    def __init__(self, address: str) -> None:
        self.active = False
        self._conn: DBusConnection = open_dbus_connection(bus=address)
        self._send_lock = threading.Lock()
        reply = self._conn.send_and_get_reply(message_bus.RequestName(NAME, 4), timeout=5)
        assert reply.body == (1,), f"could not own {NAME}: {reply.body}"  # 1: primary owner
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while True:
                msg = self._conn.receive()
                fields = msg.header.fields
                if (
                    msg.header.message_type == MessageType.method_call
                    and fields.get(HeaderFields.member) == "GetActive"
                ):
                    with self._send_lock:
                        self._conn.send(new_method_return(msg, "b", (self.active,)))
        except (ConnectionError, OSError):
            return  # closed by close()

    def _emit(self, active: bool) -> None:
        self.active = active
        signal = new_signal(DBusAddress(PATH, interface=NAME), "ActiveChanged", "b", (active,))
        with self._send_lock:
            self._conn.send(signal)

    def lock(self) -> None:
        """The screen locks: ActiveChanged(true)."""
        self._emit(True)

    def unlock(self) -> None:
        """The person unlocked it: ActiveChanged(false)."""
        self._emit(False)

    def close(self) -> None:
        self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._conn.close()


@pytest.fixture
def screensaver(session_bus: str) -> Iterator[StandInScreenSaver]:
    """The stand-in screen saver, inactive, on the test's session bus."""
    saver = StandInScreenSaver(session_bus)
    yield saver
    saver.close()
