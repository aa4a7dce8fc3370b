"""Can input be captured here? Answered before any hook is installed.

pynput captures through the X RECORD extension. Under Wayland it would see
only XWayland clients — a partial, misleading recording — so a Wayland session
is refused outright rather than recorded in part. A display that is unset,
unreachable, silent or lacks RECORD is refused with what to do about it.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping

from cleartrace.errors import DisplayUnavailable

__all__ = ["check_display", "display_support"]

_TIMEOUT = 3.0  # an X server answers its connection setup in milliseconds


def check_display(env: Mapping[str, str] = os.environ, *, timeout: float = _TIMEOUT) -> str:
    """The X display input will be captured from (the value of DISPLAY).

    Opens and closes one connection to the X server to prove it answers and
    has the RECORD extension; waits at most `timeout` seconds for it.

    Raises:
        DisplayUnavailable: not Linux, a Wayland session, no DISPLAY, an X server
            that does not exist, refuses the connection or does not answer, or
            one without the RECORD extension.
    """
    if not sys.platform.startswith("linux"):
        raise DisplayUnavailable(
            f"capture on {sys.platform} is not supported yet: ClearTrace records on Linux "
            "with an X11 session only"
        )
    if env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or env.get("WAYLAND_DISPLAY"):
        raise DisplayUnavailable(
            "this is a Wayland session: ClearTrace captures on X11 only and would see just "
            "part of your input here; log out and log in with an 'X11' or 'Xorg' session "
            "(chosen on the login screen) to record"
        )
    display = env.get("DISPLAY", "")
    if not display:
        raise DisplayUnavailable(
            "no X display: DISPLAY is not set; run ClearTrace inside a graphical X11 "
            "session or set DISPLAY (e.g. DISPLAY=:0)"
        )
    _reachable(display)
    _probe(display, timeout)
    return display


def _reachable(display: str) -> None:
    """Connect a bare socket the way python-xlib would, and close it.

    python-xlib leaks the socket of a failed connect (a ResourceWarning at some
    later garbage collection), so find out first, with a socket we close.

    Raises:
        DisplayUnavailable: the name is malformed or nothing listens there.
    """
    from Xlib import error as xerror
    from Xlib.support.unix_connect import get_display

    try:
        _, protocol, host, number, _ = get_display(display)
    except xerror.DisplayNameError as exc:
        raise DisplayUnavailable(
            f"DISPLAY={display!r} is not a valid X display name; use the form ':0' or 'host:0'"
        ) from exc
    targets: list[tuple[socket.AddressFamily, str | tuple[str, int]]] = []
    if host and host != "unix" and protocol != "unix":
        targets.append((socket.AF_INET, (host, 6000 + number)))
    else:
        path = f"/tmp/.X11-unix/X{number}"
        targets.append((socket.AF_UNIX, path if os.path.exists(path) else "\0" + path))
        if not protocol and not host:  # python-xlib falls back to TCP here
            targets.append((socket.AF_INET, ("localhost", 6000 + number)))
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(_TIMEOUT)
                sock.connect(address)
            return
        except OSError:
            continue
    raise DisplayUnavailable(
        f"cannot connect to the X display {display}: no X server is running there; "
        "start your graphical session or correct DISPLAY"
    )


def _probe(display: str, timeout: float) -> None:
    """Open an Xlib connection on a helper thread and check for RECORD and XInput.

    python-xlib has no timeout: a stopped or wedged server would block the
    caller for ever, so the caller waits on the thread instead. A thread that
    outlives its wait finishes (and closes its connection) if the server wakes.

    Raises:
        DisplayUnavailable: the server refused, did not answer, or lacks RECORD
            or XInput.
    """
    result: list[str] = []

    def attempt() -> None:
        from Xlib.display import Display
        from Xlib.error import ConnectionClosedError

        deadline = time.monotonic() + timeout / 2
        while True:
            try:
                conn = Display(display)
                break
            except ConnectionClosedError as exc:
                # A server whose last client just left (our own socket probe, on
                # a display nothing else uses) resets and closes connections
                # that arrive meanwhile: try again while the wait allows.
                if time.monotonic() > deadline:
                    result.append(f"refused:{type(exc).__name__}")
                    return
                time.sleep(0.05)
            except Exception as exc:  # DisplayConnectionError: refused
                result.append(f"refused:{type(exc).__name__}")
                return
        try:
            if not conn.has_extension("RECORD"):
                result.append("norecord")
            elif not conn.has_extension("XInputExtension"):
                result.append("noxinput")
            else:
                result.append("ok")
        finally:
            conn.close()

    thread = threading.Thread(target=attempt, name="cleartrace-display-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        raise DisplayUnavailable(
            f"the X server at {display} did not answer within {timeout:g} s; "
            "it may be stopped or overloaded: restart the graphical session"
        )
    if result[0].startswith("refused:"):
        raise DisplayUnavailable(
            f"the X server at {display} refused the connection "
            f"({result[0].partition(':')[2]}): run ClearTrace as the user logged in to "
            "that session, or allow it with 'xhost +si:localuser:$USER'"
        )
    if result[0] == "norecord":
        raise DisplayUnavailable(
            f"the X server at {display} has no RECORD extension, which input capture "
            'needs; enable it (Xorg: Section "Module" Load "record") and restart X'
        )
    if result[0] == "noxinput":
        raise DisplayUnavailable(
            f"the X server at {display} has no XInput extension, which ClearTrace needs "
            "to tell when the focus moved into an excluded application; use an X server "
            "with XInput 2 (Xorg, Xvfb and Xwayland have it)"
        )


def display_support(env: Mapping[str, str] = os.environ) -> tuple[bool, str]:
    """(can record, one line) for `cleartrace status`: ("X11 display :0") or the reason.

    Never raises: the reason is the message `check_display` would raise.
    """
    try:
        display = check_display(env)
    except DisplayUnavailable as exc:
        return False, str(exc)
    return True, f"X11 display {display}"
