"""The screen layout (RandR) and the keyboard layout (XKB), read on the focus
watcher's X connection and reported to the timeline's `Context`.

Both are read at the watcher's start and again only when the server says
they changed, so nothing is polled and no input event costs a round trip:

- Screen: RandR 1.5 monitors (the primary first), else the active CRTCs; the
  root window's size; the scale from `Xft.dpi` in the root's
  RESOURCE_MANAGER (96 dpi = 100 %, 100 when unset). Read again on
  RRScreenChangeNotify, a CRTC change and a RESOURCE_MANAGER change.
- Keyboard: the XKB group (XkbGetState, then every XkbStateNotify whose
  group changed) and the layout names from the root's `_XKB_RULES_NAMES`
  (its third field, comma-separated, one per group). Read again when that
  property changes. python-xlib has no XKB module: the three requests used
  are declared here from the XKB protocol specification.

A display without RandR or XKB reports nothing of that part.

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cleartrace.capture.context import ScreenItem
from cleartrace.capture.timeline import FocusTimeline
from cleartrace.events import Kind

__all__ = ["ContextReader"]

log = logging.getLogger(__name__)

_SCREEN, _MONITOR = int(Kind.SCREEN), int(Kind.MONITOR)
_USE_CORE_KBD = 0x100
_STATE_NOTIFY = 2  # xkbType of XkbStateNotify, and its bit in the event masks
_STATE_NOTIFY_MASK = 1 << _STATE_NOTIFY
_GROUP_IN_STATE_NOTIFY = 9  # offset in the event's data after the 4-byte header


def _xkb_requests() -> tuple[Any, Any, Any]:
    """XkbUseExtension, XkbSelectEvents and XkbGetState, as python-xlib requests."""
    from Xlib.protocol import rq

    class UseExtension(rq.ReplyRequest):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"), rq.Opcode(0), rq.RequestLength(),
            rq.Card16("wanted_major"), rq.Card16("wanted_minor"),
        )  # fmt: skip
        _reply = rq.Struct(
            rq.ReplyCode(), rq.Bool("supported"), rq.Card16("sequence_number"),
            rq.ReplyLength(), rq.Card16("server_major"), rq.Card16("server_minor"), rq.Pad(20),
        )  # fmt: skip

    class SelectEvents(rq.Request):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"), rq.Opcode(1), rq.RequestLength(), rq.Card16("device_spec"),
            rq.Card16("affect_which"), rq.Card16("clear"), rq.Card16("select_all"),
            rq.Card16("affect_map"), rq.Card16("map"),
        )  # fmt: skip

    class GetState(rq.ReplyRequest):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"), rq.Opcode(4), rq.RequestLength(),
            rq.Card16("device_spec"), rq.Pad(2),
        )  # fmt: skip
        _reply = rq.Struct(
            rq.ReplyCode(), rq.Card8("device_id"), rq.Card16("sequence_number"),
            rq.ReplyLength(), rq.Card8("mods"), rq.Card8("base_mods"),
            rq.Card8("latched_mods"), rq.Card8("locked_mods"), rq.Card8("group"),
            rq.Card8("locked_group"), rq.Int16("base_group"), rq.Int16("latched_group"),
            rq.Card8("compat_state"), rq.Card8("grab_mods"), rq.Card8("compat_grab_mods"),
            rq.Card8("lookup_mods"), rq.Card8("compat_lookup_mods"), rq.Pad(1),
            rq.Card16("ptr_btn_state"), rq.Pad(6),
        )  # fmt: skip

    return UseExtension, SelectEvents, GetState


def scale_of(resources: str) -> int:
    """The scale in percent from a RESOURCE_MANAGER text: Xft.dpi / 96, else 100."""
    for line in resources.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Xft.dpi":
            try:
                return round(float(value.strip()) * 100 / 96)
            except ValueError:
                return 100
    return 100


class ContextReader:
    """Reads and reports the context; its methods run on the watcher's thread.

    The caller selects PropertyChangeMask on the root and passes every event
    it does not handle itself to `handle`.
    """

    def __init__(self, display: Any, root: Any, timeline: FocusTimeline) -> None:
        from Xlib import Xatom

        self._display, self._root, self._timeline = display, root, timeline
        self._context = timeline.context
        self._resources = Xatom.RESOURCE_MANAGER
        self._rules = display.intern_atom("_XKB_RULES_NAMES")
        self._group = 0
        self._randr = self._start_randr()
        self._xkb_event, self._get_state, self._xkb_opcode = self._start_xkb()

    def _start_randr(self) -> tuple[int, bool] | None:
        """(first event code, whether RandR 1.5 monitors exist), or None without RandR."""
        from Xlib.ext import randr

        if not self._display.has_extension("RANDR"):
            return None
        version = self._display.xrandr_query_version()
        self._root.xrandr_select_input(
            randr.RRScreenChangeNotifyMask | randr.RRCrtcChangeNotifyMask
        )
        code = int(self._display.query_extension("RANDR").first_event)
        return code, (version.major_version, version.minor_version) >= (1, 5)

    def _start_xkb(self) -> tuple[int | None, Any, int]:
        ext = self._display.query_extension("XKEYBOARD")
        if ext is None or not ext.present:
            return None, None, 0
        use, select, get_state = _xkb_requests()
        opcode = ext.major_opcode
        if not use(
            display=self._display.display, opcode=opcode, wanted_major=1, wanted_minor=0
        ).supported:
            return None, None, 0
        select(
            display=self._display.display, opcode=opcode, device_spec=_USE_CORE_KBD,
            affect_which=_STATE_NOTIFY_MASK, clear=0, select_all=_STATE_NOTIFY_MASK,
            affect_map=0, map=0,
        )  # fmt: skip
        return ext.first_event, get_state, opcode

    # -- reporting -----------------------------------------------------------------

    def report_all(self) -> None:
        """Read and report both layouts (at the watcher's start)."""
        if self._get_state is not None:
            state = self._get_state(
                display=self._display.display, opcode=self._xkb_opcode, device_spec=_USE_CORE_KBD
            )
            self._group = int(state.group)
        self._report_layout(None)
        self._report_screen(None)

    def handle(self, event: Any) -> bool:
        """Report what `event` changed; False when it is not one of ours."""
        from Xlib import X

        if event.type == X.PropertyNotify and event.window == self._root:
            if event.atom == self._rules:
                self._report_layout(event.time)
            elif event.atom == self._resources:
                self._report_screen(event.time)
            return True
        if self._randr is not None and event.type in (self._randr[0], self._randr[0] + 1):
            self._report_screen(getattr(event, "timestamp", None))
            return True
        if self._xkb_event is not None and event.type == self._xkb_event:
            if event.detail == _STATE_NOTIFY:
                group = event.data[_GROUP_IN_STATE_NOTIFY]
                if group != self._group:
                    self._group = group
                    self._report_layout(int.from_bytes(event.data[0:4], "little"))
            return True
        return False

    def _stamp(self, server_ms: int | None) -> int:
        """Monotonic ns of a server time, else now."""
        mapped = None if not server_ms else self._timeline.to_ns(server_ms)
        return time.monotonic_ns() if mapped is None else mapped

    def _report_layout(self, server_ms: int | None) -> None:
        if self._get_state is None:
            return
        prop = self._root.get_full_property(self._rules, 0)  # AnyPropertyType
        names: list[str] = []
        if prop is not None and isinstance(prop.value, bytes):
            fields = prop.value.split(b"\0")
            if len(fields) > 2:
                names = fields[2].decode("latin-1").split(",")
        name = names[self._group] if self._group < len(names) else None
        self._context.layout(self._group, name or None, self._stamp(server_ms))

    def _report_screen(self, server_ms: int | None) -> None:
        if self._randr is None:
            return
        from Xlib import Xatom

        geometry = self._root.get_geometry()
        prop = self._root.get_full_property(self._resources, Xatom.STRING)
        text = (
            prop.value.decode("latin-1")
            if prop is not None and isinstance(prop.value, bytes)
            else ""
        )
        monitors = self._monitors()
        items: list[ScreenItem] = [
            (_SCREEN, len(monitors), int(geometry.width), int(geometry.height), scale_of(text)),
            *((_MONITOR, x, y, w, h) for x, y, w, h in monitors),
        ]
        self._context.screen(items, self._stamp(server_ms))

    def _monitors(self) -> list[tuple[int, int, int, int]]:
        """(x, y, width, height) of every monitor, the primary first."""
        assert self._randr is not None
        if self._randr[1]:
            found = self._root.xrandr_get_monitors(is_active=True).monitors
            ordered = sorted(found, key=lambda m: not m.primary)
            return [(m.x, m.y, m.width_in_pixels, m.height_in_pixels) for m in ordered]
        resources = self._root.xrandr_get_screen_resources()
        out = []
        for crtc in resources.crtcs:
            info = self._display.xrandr_get_crtc_info(crtc, resources.config_timestamp)
            if info.mode and info.width and info.height:
                out.append((info.x, info.y, info.width, info.height))
        return out
