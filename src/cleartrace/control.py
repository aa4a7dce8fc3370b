"""The control socket of a running recorder.

One Unix stream socket per home (0600, in a 0700 runtime directory). A client
sends one JSON object on one line, e.g. ``{"cmd": "pause", "for_s": 900}``, and
reads one JSON line back: ``{"ok": true, ...}`` or ``{"ok": false, "error":
"..."}``. Each request is answered on a thread of its own (at most
`_ANSWERING` at once; more wait for one to end), so a long one (ending a
long session compacts it) does not hold up a status or a pause.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartrace.errors import ClearTraceError, RecorderError, RecorderNotRunning

__all__ = ["ControlServer", "Handler", "request"]

log = logging.getLogger(__name__)

#: Handles one request object and returns the reply's fields.
Handler = Callable[[dict[str, Any]], dict[str, Any]]

_MAX_REQUEST = 64 * 1024
_ANSWERING = 8
#: How long closing waits for the requests being answered (a pause, a status).
_CLOSE_WAIT_S = 5.0


def request(path: Path, cmd: str, timeout: float = 3.0, **args: Any) -> dict[str, Any]:
    """Send one command to the recorder owning `path` and return its reply.

    Raises:
        RecorderNotRunning: nothing listens on the socket.
        RecorderError: the recorder answered with an error or not at all.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                part = sock.recv(65536)
                if not part:
                    break
                data += part
    except (FileNotFoundError, ConnectionRefusedError):
        raise RecorderNotRunning(
            "no recorder is running; start one with 'cleartrace record' or the tray app"
        ) from None
    except OSError as exc:
        raise RecorderError(f"the recorder did not answer on {path}: {exc}") from exc
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError:
        raise RecorderError(f"the recorder sent an unreadable reply on {path}") from None
    if not reply.get("ok"):
        raise RecorderError(str(reply.get("error", "the recorder refused the request")))
    return reply


class ControlServer:
    """Serves `handler` on the socket at `path` until `close()`."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self._path = path
        self._handler = handler
        self._wake_r, self._wake_w = os.pipe()
        self._sock = self._bind(path)
        self._answering = threading.BoundedSemaphore(_ANSWERING)
        self._closing = threading.Event()
        self._answerers: set[threading.Thread] = set()  # under _lock
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="cleartrace-control", daemon=True)
        self._thread.start()

    @staticmethod
    def _bind(path: Path) -> socket.socket:
        if path.exists() or path.is_symlink():
            try:
                request(path, "ping", timeout=1.0)
            except RecorderNotRunning:
                path.unlink()  # left behind by a recorder that crashed
            except RecorderError as exc:
                # Something listens and does not answer in time: a busy recorder
                # (ending a long session), not a stale file. Taking its socket
                # would leave it recording where no pause or withdrawal reaches.
                raise RecorderError(
                    f"a recorder holds this home's control socket but did not answer ({exc}); "
                    "wait a moment and try again, or stop it first"
                ) from exc
            else:
                raise RecorderError(
                    "a recorder is already running for this home; "
                    "use 'cleartrace status' or stop it first"
                )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket file is created 0600, never briefly wider
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            raise RecorderError(
                f"cannot create the control socket {path}: {exc}; if the path is too long, "
                "set XDG_RUNTIME_DIR or choose a shorter CLEARTRACE_HOME"
            ) from exc
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(8)
        return sock

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            while not self._answering.acquire(timeout=0.1):  # every answerer busy
                if self._closing.is_set():
                    conn.close()
                    return
            answerer = threading.Thread(
                target=self._answer_on_thread,
                args=(conn,),
                name="cleartrace-control-answer",
                daemon=True,
            )
            with self._lock:
                self._answerers.add(answerer)
            answerer.start()

    def _answer_on_thread(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._answer(conn)
        finally:
            with self._lock:
                self._answerers.discard(threading.current_thread())
            self._answering.release()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            data = b""
            while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
                part = conn.recv(4096)
                if not part:
                    break
                data += part
            req = json.loads(data)
            if not isinstance(req, dict):
                raise ValueError("request is not an object")
            reply = {"ok": True, **self._handler(req)}
        except ClearTraceError as exc:
            reply = {"ok": False, "error": str(exc)}
        except (ValueError, OSError) as exc:
            reply = {"ok": False, "error": f"bad request: {type(exc).__name__}"}
        except Exception as exc:  # a bug must not kill the control thread
            log.error("control request failed: %s", type(exc).__name__)
            reply = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        """Stop serving and remove the socket file; idempotent."""
        if self._wake_w < 0:
            return
        self._closing.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        self._sock.close()
        # What a request being answered does (a pause, a withdrawal) is done
        # before the recorder it was asked of goes on shutting down.
        deadline = time.monotonic() + _CLOSE_WAIT_S
        with self._lock:
            answerers = list(self._answerers)
        for answerer in answerers:
            answerer.join(max(0.0, deadline - time.monotonic()))
        if any(a.is_alive() for a in answerers):
            log.warning("a control request was still being answered when the server closed")
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_w = -1
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
