"""One tray per home: a second start asks the first to come forward, then exits.

The first instance listens on a local socket next to the recorder's control
socket: in the per-user runtime directory (0700), named after the same digest
of the home path (`<runtime>/cleartrace-<digest>-tray`), so it is per user
and per home, and short enough for AF_UNIX. A second instance connects and
sends one line, `raise`.

A socket file left by a crash is found by connecting: nothing answers, so it
is removed and listened on again. Two instances started in the same
millisecond may both listen; the second `listen()` then fails and says so
(the tray still works, it just cannot be called forward).
"""

# ruff: noqa: N815 — Qt signals keep Qt's camelCase names (reviewRequested, ...).

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from cleartrace.paths import Paths

__all__ = ["SingleInstance", "instance_name"]

log = logging.getLogger(__name__)

_REQUEST = b"raise\n"
_TIMEOUT_MS = 1000


def instance_name(paths: Paths) -> str:
    """The local socket's full path, beside the control socket of the same home."""
    control = paths.socket
    return str(control.with_name(f"{control.stem}-tray"))


class SingleInstance(QObject):
    """`ask_first_to_raise()` in a second instance; `listen()` in the first, which
    then emits `raiseRequested` for each second start."""

    raiseRequested = Signal()

    def __init__(self, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name(paths)
        self._server: QLocalServer | None = None

    def ask_first_to_raise(self) -> bool:
        """True when a first instance took the request (this one should exit).

        Blocks for at most about a second, before the event loop runs: a
        local connect and one short write.
        """
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(_TIMEOUT_MS):
            return False
        sock.write(_REQUEST)
        delivered = sock.waitForBytesWritten(_TIMEOUT_MS)
        sock.disconnectFromServer()
        return delivered

    def listen(self) -> bool:
        """Listen for later instances; False (logged) if the socket cannot be made."""
        QLocalServer.removeServer(self.name)  # a stale file: nobody answered on it
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("cannot listen for a second start: %s", server.errorString())
            return False
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def _accept(self) -> None:
        assert self._server is not None
        while (conn := self._server.nextPendingConnection()) is not None:
            conn.readyRead.connect(self._on_ready_read)
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._read(conn)

    def _on_ready_read(self) -> None:
        conn = self.sender()
        if isinstance(conn, QLocalSocket):
            self._read(conn)

    def _read(self, conn: QLocalSocket) -> None:
        if not conn.canReadLine():
            return
        line = bytes(conn.readLine().data())
        conn.disconnectFromServer()
        if line == _REQUEST:
            log.info("a second start asked this instance to come forward")
            self.raiseRequested.emit()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
