"""XInput 2 focus events as the focus watcher reads them.

The protocol side of `cleartrace.capture._x11_focus`: opening a connection
whose XI2 focus events can be read, selecting them on a window, and decoding
one. python-xlib does not parse XI2 focus events, so they are read raw from
the event's bytes; a python-xlib that did parse them would hide those bytes,
so such a version is refused at connection time rather than misread later.

python-xlib is imported inside the functions (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Any, NamedTuple

from cleartrace.errors import DisplayUnavailable

__all__ = [
    "FOCUS_IN",
    "FOCUS_OUT",
    "GENERIC_EVENT",
    "GRAB_MODES",
    "NOTIFY_INFERIOR",
    "NOTIFY_POINTER",
    "UNREADABLE",
    "FocusEvent",
    "UnreadableEvent",
    "connect",
    "display_error",
    "read_focus",
    "select_focus",
    "serial_before",
]

log = logging.getLogger(__name__)

FOCUS_IN, FOCUS_OUT = 9, 10  # XI_FocusIn, XI_FocusOut
NOTIFY_INFERIOR = 2  # XINotifyInferior: the focus moved within the same window's subtree
# XINotifyPointer: sent to the window under the pointer as the focus moves to or
# from PointerRoot; the focus itself is on the root.
NOTIFY_POINTER = 5
# XINotifyGrab, XINotifyWhileGrabbed, XINotifyPassiveGrab: the keys went to a
# grabbing window; get_input_focus still names the focus window.
GRAB_MODES = frozenset((1, 3, 4))
GENERIC_EVENT = 35
_ALL_MASTERS = 1
_FOCUS_MASK = (1 << FOCUS_IN) | (1 << FOCUS_OUT)
# deviceid, time, sourceid, mode, detail, root, event: the first fields after evtype.
_FOCUS = struct.Struct("=HIHBBII")

UNREADABLE = (
    "this python-xlib parses XInput focus events, which the focus watcher reads "
    "itself; install the python-xlib version ClearTrace requires"
)


class UnreadableEvent(Exception):
    """python-xlib parsed an XInput focus event this module reads raw."""


class FocusEvent(NamedTuple):
    """The fields of an XI2 focus event the watcher uses."""

    time: int  # server time, milliseconds, 32 bits
    mode: int
    detail: int
    window: int


def serial_before(a: int, b: int) -> bool:
    """Request serial a came before b (16 bits, wrapping)."""
    return 0 < (b - a) % 65536 < 32768


def display_error(exc: BaseException) -> DisplayUnavailable:
    """The error for a focus connection that failed, naming the display, not the cause's text."""
    return DisplayUnavailable(
        f"cannot watch the focus on the X display {os.environ.get('DISPLAY', '')!r} "
        f"({type(exc).__name__}); run 'cleartrace status' to see why"
    )


def connect() -> tuple[Any, int]:
    """A new X connection whose XI2 focus events can be read, and XInput's major opcode.

    Raises:
        DisplayUnavailable: no display, no XInput 2, or a python-xlib that
            hides what the watcher needs (the request serial, raw focus events).
    """
    from Xlib.display import Display

    try:
        display = Display()
    except Exception as exc:  # DisplayError, ConnectionClosedError, OSError
        raise display_error(exc) from exc
    try:
        if not isinstance(getattr(display.display, "request_serial", None), int):
            raise DisplayUnavailable(
                "this python-xlib does not expose the request serial the focus watcher "
                "needs to know which windows it watches; install the python-xlib "
                "version ClearTrace requires"
            )
        # A window that vanishes before a request about it is no error
        # worth printing (python-xlib's default prints it to stderr).
        display.set_error_handler(_ignore_error)
        ext = display.query_extension("XInputExtension")
        if ext is None or display.xinput_query_version().major_version < 2:
            raise DisplayUnavailable(
                "the X server has no XInput 2, which ClearTrace needs to tell when "
                "the focus moved into an excluded application; use an X server with "
                "XInput 2 (Xorg, Xvfb and Xwayland have it)"
            )
        parsed = getattr(display.display, "ge_event_data", None) or {}
        if any((ext.major_opcode, evtype) in parsed for evtype in (FOCUS_IN, FOCUS_OUT)):
            raise UnreadableEvent
    except DisplayUnavailable:
        display.close()
        raise
    except UnreadableEvent as exc:
        display.close()
        raise DisplayUnavailable(UNREADABLE) from exc
    except Exception as exc:
        display.close()
        raise display_error(exc) from exc
    return display, int(ext.major_opcode)


def select_focus(window: Any) -> None:
    """Select XI2 focus events of every master device on `window`.

    A window that vanished first makes the request fail asynchronously,
    harmlessly (`_ignore_error`): it can never have the focus.
    """
    from Xlib.ext import xinput

    xinput.select_events(window, [(_ALL_MASTERS, _FOCUS_MASK)])


def read_focus(event: Any) -> FocusEvent:
    """The fields of an XI2 focus event, read from its raw bytes.

    Raises:
        UnreadableEvent: python-xlib parsed the event, so its bytes are gone.
    """
    data = getattr(event, "data", None)
    if not isinstance(data, bytes | bytearray) or len(data) < _FOCUS.size:
        raise UnreadableEvent
    _, stamp, _, mode, detail, _, wid = _FOCUS.unpack_from(data)
    return FocusEvent(stamp, mode, detail, wid)


def _ignore_error(error: Any, request: Any) -> None:
    """python-xlib's handler for errors of requests without a reply."""
    log.debug("an X request failed: %s", type(error).__name__)
