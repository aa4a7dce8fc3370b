"""The application classes of the windows open now, for Settings to offer as exclusions.

Only WM_CLASS is read, never a title: a person picking an application to
exclude needs its class (what exclusions match), and titles are captured
content. With an EWMH window manager the list is `_NET_CLIENT_LIST` on the
root window; without one (or one that does not publish it) the mapped
children of the root, and their children for a window manager that reparents
into frames without EWMH, are asked for WM_CLASS instead.

python-xlib is imported inside the function: nothing here touches the display
at import time. Callers check the display first (`check_display`), since
python-xlib has no connection timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from cleartrace.errors import DisplayUnavailable

__all__ = ["open_window_classes"]

log = logging.getLogger(__name__)


def open_window_classes(display_name: str | None = None) -> list[str]:
    """The WM_CLASS class (lower case, sorted, each once) of every open top-level window.

    The class is what the recorder reports as the application (the instance
    name where a window has no class), in the spelling exclusions store.

    Raises:
        DisplayUnavailable: the X display cannot be opened.
    """
    from Xlib.display import Display

    try:
        display = Display(display_name)
    except Exception as exc:  # DisplayError, DisplayConnectionError, ConnectionClosedError
        raise DisplayUnavailable(
            f"cannot list the open windows on the X display {display_name or '(DISPLAY)'} "
            f"({type(exc).__name__}); run 'cleartrace status' to see why"
        ) from exc
    try:
        root = display.screen().root
        windows = _client_list(display, root)
        if windows is None:
            windows = _mapped_tops(root)
        classes = {name for window in windows if (name := _class_of(window)) is not None}
        return sorted(classes)
    finally:
        display.close()


def _client_list(display: Any, root: Any) -> list[Any] | None:
    """The windows the window manager lists, or None when none publishes the list."""
    from Xlib import X

    prop = root.get_full_property(display.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
    if prop is None:
        return None
    return [display.create_resource_object("window", wid) for wid in prop.value]


def _mapped_tops(root: Any) -> list[Any]:
    """Viewable children of the root, plus their children (frames of a reparenting WM)."""
    from Xlib import X
    from Xlib import error as xerror

    out: list[Any] = []
    for window in root.query_tree().children:
        try:
            if window.get_attributes().map_state != X.IsViewable:
                continue
            out.append(window)
            out.extend(window.query_tree().children)
        except (xerror.BadWindow, xerror.BadDrawable) as exc:
            log.debug("a window vanished while listing: %s", type(exc).__name__)
    return out


def _class_of(window: Any) -> str | None:
    from Xlib import error as xerror

    try:
        wm_class = window.get_wm_class()
    except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch) as exc:
        # Closed between the listing and this request: it is not open any more.
        log.debug("a window vanished while listing: %s", type(exc).__name__)
        return None
    if not wm_class:
        return None
    name = (wm_class[1] or wm_class[0]).strip().casefold()
    return name or None
