"""Whether the desktop says its screen saver is active on the session bus: the
sign, where a desktop locks through `org.freedesktop.ScreenSaver` (KDE, Xfce,
Cinnamon, ...) or `org.gnome.ScreenSaver`, that the screen is locked.

It is the second source of the locked-screen boundary, beside the X screen
saver (`_x11_saver`): GNOME's and KDE's lockers do not turn the X saver on,
and a locker's screen saver stays "active" until it is unlocked, whereas the
X server turns its own off at the first key typed at the lock screen.

One thread listens for `ActiveChanged(b)` and first asks `GetActive`; the
recorder's tick only reads the last answer, so no tick ever waits on the
bus. Where there is no session bus (no DBUS_SESSION_BUS_ADDRESS), or it cannot
be reached, there is no thread and the screen is "not locked" by this
source. Any client on the bus may send the signal; believing a false
"active" only keeps input out, and "inactive" never overrides the X saver.

jeepney (pure Python) speaks the protocol; it is imported in the thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["BusScreenSaver"]

log = logging.getLogger(__name__)

#: The screen saver interfaces whose `ActiveChanged(b)` is believed, with the
#: bus name and object path `GetActive` is asked at.
INTERFACES = {
    "org.freedesktop.ScreenSaver": "/org/freedesktop/ScreenSaver",
    "org.gnome.ScreenSaver": "/org/gnome/ScreenSaver",
}

_STOP_JOIN_S = 5.0
_CALL_TIMEOUT_S = 2.0


class BusScreenSaver:
    """Listens on the session bus for the screen saver's state. `start()` once,
    `stop()` joins the thread; `active` is safe to read from any thread."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._lock = threading.Lock()
        self._stopping = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        #: Per interface, whether it last said the screen saver is active.
        self._active: dict[str, bool] = {}
        #: Set once the thread is listening (or has given up): tests wait on it.
        self.ready = threading.Event()

    @property
    def active(self) -> bool:
        """Whether any screen saver interface last said it is active."""
        return any(self._active.values())

    def start(self) -> None:
        """Begin listening, where a session bus exists; returns at once."""
        if not self._env.get("DBUS_SESSION_BUS_ADDRESS"):
            self.ready.set()  # no session bus: silently absent
            return
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(
                target=self._listen, name="cleartrace-bus-saver", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop listening and return once the thread has ended. Idempotent."""
        with self._lock:
            self._stopping = True
            sock, thread = self._sock, self._thread
        if sock is not None:
            _shut(sock)  # ends the thread's blocking read at once
        if thread is not None:
            thread.join(_STOP_JOIN_S)
            if thread.is_alive():
                log.warning("the session bus listener did not stop within %.0f s", _STOP_JOIN_S)
        self.ready.set()

    def _listen(self) -> None:
        conn: Any = None
        try:
            from jeepney.io.blocking import open_dbus_connection

            conn = open_dbus_connection(bus=self._env["DBUS_SESSION_BUS_ADDRESS"])
            with self._lock:
                if self._stopping:
                    return
                self._sock = conn.sock
            self._subscribe(conn)
            self.ready.set()
            while True:
                self._take(conn.receive())
        except Exception as exc:  # the bus went away, or stop() shut the socket
            if not self._stopping:
                log.info("the session bus tells no screen lock: %s", type(exc).__name__)
        finally:
            self.ready.set()
            if conn is not None:
                conn.close()

    def _subscribe(self, conn: Any) -> None:
        from jeepney import DBusAddress, MatchRule, MessageType, message_bus, new_method_call

        for interface, path in INTERFACES.items():
            rule = MatchRule(type="signal", interface=interface, member="ActiveChanged")
            conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=_CALL_TIMEOUT_S)
            ask = new_method_call(DBusAddress(path, interface, interface), "GetActive")
            reply = conn.send_and_get_reply(ask, timeout=_CALL_TIMEOUT_S)
            if reply.header.message_type == MessageType.method_return and reply.body:
                self._active[interface] = bool(reply.body[0])  # else nobody owns the name

    def _take(self, msg: Any) -> None:
        from jeepney import HeaderFields, MessageType

        fields = msg.header.fields
        interface = fields.get(HeaderFields.interface)
        if (
            msg.header.message_type == MessageType.signal
            and interface in INTERFACES
            and fields.get(HeaderFields.member) == "ActiveChanged"
            and fields.get(HeaderFields.signature) == "b"
        ):
            self._active[interface] = bool(msg.body[0])
            log.info("the session bus says the screen saver is %s", "on" if msg.body[0] else "off")


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed by its thread
        log.debug("shutting the session bus socket: %s", type(exc).__name__)
