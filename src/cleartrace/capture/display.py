"""Can input be captured here? Answered before any hook is installed.

pynput captures through the X RECORD extension. Under Wayland it would see
only XWayland clients — a partial, misleading recording — so a Wayland session
is refused outright rather than recorded in part.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Mapping

from cleartrace.errors import DisplayUnavailable

__all__ = ["check_display", "display_support"]


def check_display(env: Mapping[str, str] | None = None) -> str:
    """The X display to capture from.

    Raises:
        DisplayUnavailable: not Linux/X11, a Wayland session, no DISPLAY, an X
            server that refuses the connection, or one without RECORD.
    """
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        raise DisplayUnavailable(
            f"capture on {sys.platform} is not supported yet; ClearTrace records on Linux/X11"
        )
    if env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or env.get("WAYLAND_DISPLAY"):
        raise DisplayUnavailable(
            "this is a Wayland session: ClearTrace captures on X11 only and would see just "
            "part of your input here; log in with an 'X11' or 'Xorg' session to record"
        )
    display = env.get("DISPLAY")
    if not display:
        raise DisplayUnavailable(
            "no X display (DISPLAY is not set): run ClearTrace inside a graphical X11 session"
        )
    _probe(display)
    return display


def _probe(display: str) -> None:
    from Xlib import error as xerror
    from Xlib.display import Display

    failure = None
    # python-xlib leaves the socket of a failed TCP fallback unclosed; finalise
    # it here, quietly, instead of warning at some later garbage collection.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            conn = Display(display)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            failure = type(exc).__name__
        gc.collect()
    if failure is not None:
        raise DisplayUnavailable(
            f"cannot connect to the X display {display} ({failure}): "
            "is the X server running and does it allow this user?"
        )
    try:
        if not conn.has_extension("RECORD"):
            raise DisplayUnavailable(
                f"the X server at {display} has no RECORD extension, which input capture "
                "needs; enable it in the X server configuration"
            )
    finally:
        conn.close()


def display_support(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(can record, a one-line explanation) for `cleartrace status`."""
    try:
        display = check_display(env)
    except DisplayUnavailable as exc:
        return False, str(exc)
    return True, f"X11 display {display}"
