"""Which application a focused top-level window belongs to, read the way the ICCCM says.

A top-level window is the application's own window only without a window
manager; a reparenting manager puts each application's window (the client)
in a frame of its own, and that frame may carry a WM_CLASS of its own. The
client is the window marked with WM_STATE, which every ICCCM window manager
sets (as XmuClientWindow finds it). A popup (a dialog, a PIN prompt) is
judged with the windows it is transient for and its client leader: it is
excluded when any of them is, so neither a popup of an excluded application
nor an excluded application's dialog parented to another window (pinentry
given a caller's window) escapes. A window whose application cannot be named
is unknown, and unknown is treated as excluded by the recorder.

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

from typing import Any

from cleartrace.capture.timeline import FocusedWindow

__all__ = ["ClientNamer"]

_DEPTH = 3  # the frame, its children and grandchildren (nested decorations)
_OWNER_HOPS = 8  # transient-for chains are short; a loop must not hang the watcher


class ClientNamer:
    """Names the application of a top-level window; one per X connection.

    Every method may raise python-xlib's BadWindow, BadDrawable or BadMatch
    when a window vanishes while it is read; the caller decides what that means.
    """

    def __init__(self, display: Any, *, titles: bool) -> None:
        from Xlib import Xatom

        self._display = display
        self._titles = titles
        self._wm_state = display.intern_atom("WM_STATE")
        self._transient_for = Xatom.WM_TRANSIENT_FOR
        self._leader = display.intern_atom("WM_CLIENT_LEADER")
        self._net_wm_name = display.intern_atom("_NET_WM_NAME")
        self._utf8 = display.intern_atom("UTF8_STRING")
        self._root = int(display.screen().root.id)

    def name(self, top: Any) -> FocusedWindow | None:
        """The application of top-level window `top`; None if it cannot be named.

        Its app is the client's own class, else its owner's, else its client
        leader's; `names` holds the (class, instance) of all three; `geometry`
        is the frame of `top` (the window manager's frame, or the window).
        """
        client = self._client(top)
        own = self._class_pair(client)
        owners = self._owner_pairs(client)
        leader_window = self._window_prop(client, self._leader)
        leader = None if leader_window is None else self._class_pair(leader_window)
        names = tuple(pair for pair in (own, *owners, leader) if pair is not None)
        if not names:
            return None
        title = self._title(client) if self._titles else None
        frame = top.get_geometry()  # a top-level window's x, y are in root coordinates
        geometry = (int(frame.x), int(frame.y), int(frame.width), int(frame.height))
        return FocusedWindow(names[0][0], title, names, geometry)

    def _client(self, top: Any) -> Any:
        """The window marked WM_STATE at or below `top`, breadth first; `top`
        itself when none is (no window manager: the top-level is the client)."""
        from Xlib import X

        level = [top]
        for _ in range(_DEPTH):
            following = []
            for candidate in level:
                if candidate.get_full_property(self._wm_state, X.AnyPropertyType) is not None:
                    return candidate
                following.extend(candidate.query_tree().children)
            level = following
        return top

    def _owner_pairs(self, window: Any) -> list[tuple[str | None, str | None]]:
        """(class, instance) of every window up the WM_TRANSIENT_FOR chain."""
        found = []
        seen = {int(window.id)}
        for _ in range(_OWNER_HOPS):
            window = self._window_prop(window, self._transient_for)
            if window is None or int(window.id) in seen:
                break
            seen.add(int(window.id))
            pair = self._class_pair(window)
            if pair is not None:
                found.append(pair)
        return found

    def _window_prop(self, window: Any, atom: int) -> Any:
        """The window a WINDOW-typed property names; None for none or the root."""
        from Xlib import Xatom

        prop = window.get_full_property(atom, Xatom.WINDOW)
        if prop is None or not len(prop.value):
            return None
        wid = int(prop.value[0])
        if wid in (0, self._root):
            return None
        return self._display.create_resource_object("window", wid)

    @staticmethod
    def _class_pair(window: Any) -> tuple[str | None, str | None] | None:
        """(class, instance) from WM_CLASS; None when it names neither."""
        wm_class = window.get_wm_class()
        if not wm_class:
            return None
        instance, cls = (str(part) or None for part in wm_class)
        if cls is None and instance is None:
            return None
        return (cls or instance, instance)

    def _title(self, window: Any) -> str | None:
        prop = window.get_full_property(self._net_wm_name, self._utf8)
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return str(name) if name else None
