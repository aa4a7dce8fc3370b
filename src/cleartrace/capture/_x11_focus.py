"""The X11 focus watcher: which window has the keyboard, stamped in the server's clock.

It selects XInput 2 focus events on the root window and every top-level
window (and on each new one, learnt from CreateNotify on the root). An XI2
focus event carries the server time of the change, the clock the input
events are stamped in, so the writer can tell exactly which keys came before
it. Focus moves made by keyboard grabs (a PIN prompt grabbing the keyboard)
come as focus events too. Window managers move the input focus the same way,
so the same events serve with and without one; nothing is polled.

Watermarks: on request (`FocusTimeline.wanted`) it appends to a property of
a private, never mapped window; the PropertyNotify comes back stamped with
the server time, after every focus event the server sent before it.

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import collections
import logging
import os
import select
import struct
import threading
import time
from typing import Any

from cleartrace.capture.timeline import FocusTimeline
from cleartrace.errors import DisplayUnavailable
from cleartrace.events import FocusText

__all__ = ["FocusWatcher"]

log = logging.getLogger(__name__)

_JOIN_TIMEOUT = 2.0
_XI_FOCUS_IN, _XI_FOCUS_OUT = 9, 10  # XI_FocusIn, XI_FocusOut
_XI_INFERIOR = 2  # XINotifyInferior: the focus moved within the same window's subtree
# XINotifyGrab, XINotifyWhileGrabbed, XINotifyPassiveGrab: the keys went to a
# grabbing window; get_input_focus still names the focus window.
_XI_GRAB_MODES = frozenset((1, 3, 4))
_XI_ALL_MASTERS = 1
_XI_FOCUS_MASK = (1 << _XI_FOCUS_IN) | (1 << _XI_FOCUS_OUT)
_GENERIC_EVENT = 35
_SEEN_MAX = 4096
#: The focus left the window it was in for one not watched yet (or that vanished).
_ELSEWHERE = -1
# deviceid, time, sourceid, mode, detail, root, event: the first fields after evtype.
_XI_FOCUS = struct.Struct("=HIHBBII")


def _serial_before(a: int, b: int) -> bool:
    """Request serial a came before b (16 bits, wrapping)."""
    return 0 < (b - a) % 65536 < 32768


def _display_error(exc: BaseException) -> DisplayUnavailable:
    return DisplayUnavailable(
        f"cannot watch the focus on the X display {os.environ.get('DISPLAY', '')!r} "
        f"({type(exc).__name__}); run 'cleartrace status' to see why"
    )


class FocusWatcher(threading.Thread):
    """Reports every focus change to a `FocusTimeline`, and watermarks on request.

    Its X connection is opened on the caller's thread so that a failure raises
    there. The thread sleeps in select() on the connection and a self-pipe.
    """

    def __init__(self, timeline: FocusTimeline, *, titles: bool) -> None:
        from Xlib import X
        from Xlib.display import Display

        super().__init__(name="cleartrace-focus", daemon=True)
        self.titles = titles
        self.ready = threading.Event()
        self.current: FocusText = (None, None)
        self._timeline = timeline
        try:
            self._display = Display()
        except Exception as exc:  # DisplayError, ConnectionClosedError, OSError
            raise _display_error(exc) from exc
        display = self._display
        try:
            ext = display.query_extension("XInputExtension")
            if ext is None or display.xinput_query_version().major_version < 2:
                raise DisplayUnavailable(
                    "the X server has no XInput 2, which ClearTrace needs to tell when "
                    "the focus moved into an excluded application; use an X server with "
                    "XInput 2 (Xorg, Xvfb and Xwayland have it)"
                )
            self._xi = ext.major_opcode
            self._root = display.screen().root
            self._net_wm_name = display.intern_atom("_NET_WM_NAME")
            self._utf8 = display.intern_atom("UTF8_STRING")
            self._probe_atom = display.intern_atom("_CLEARTRACE_PROBE")
            self._probe_window = self._root.create_window(
                -1, -1, 1, 1, 0, 0, X.InputOnly, X.CopyFromParent,
                event_mask=X.PropertyChangeMask, override_redirect=True,
            )  # fmt: skip
            self._root.change_attributes(event_mask=X.SubstructureNotifyMask)
            self._watch(self._root)
            for window in self._root.query_tree().children:
                self._watch(window)
            display.sync()
        except DisplayUnavailable:
            display.close()
            raise
        except Exception as exc:
            display.close()
            raise _display_error(exc) from exc
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stopping = self._final_stop = False
        self._probes: collections.deque[int] = collections.deque()
        self._last_probe: int | None = None  # the token of the last probe, sent at stop
        # The top-level window the focus is in: None for none (the root, or no
        # focus), _ELSEWHERE while it is in a window not watched yet.
        self._top: int | None = None
        self._seen: dict[int, FocusText] = {}  # what each focused window was
        # The request serial that starts watching the latest new window, until
        # an event shows the server has handled it.
        self._unwatched_until: int | None = None
        # The keyboard went to a grab on a window we do not watch: unknown until
        # the grab ends (a FocusIn), whatever get_input_focus says.
        self._grabbed_away = False

    # -- life -------------------------------------------------------------------

    def stop(self, *, final: bool) -> None:
        """Confirm a last watermark, end the thread (≤ 2 s), release its resources.

        `final`: the input hooks have stopped, so that watermark lets the writer
        decide every event they delivered. Otherwise (a restart while they
        run) what follows it is unknown until the next watcher's first one.
        """
        self._final_stop = final
        self._stopping = True
        self.wake()
        self.join(_JOIN_TIMEOUT)
        if self.is_alive():
            log.warning("the focus watcher did not end within %.0f s", _JOIN_TIMEOUT)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def wake(self) -> None:
        """Make the thread look at its requests now (any thread)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError as exc:  # closed by stop(): nothing is watched any more
            log.debug("waking the focus watcher: %s", type(exc).__name__)

    def run(self) -> None:
        display, timeline = self._display, self._timeline
        try:
            self._report_start()
            timeline.attach(self.wake)
            self._probe()
            fd = display.fileno()
            while True:
                if not display.pending_events():
                    readable, _, _ = select.select([fd, self._wake_r], [], [])
                    if self._wake_r in readable:
                        os.read(self._wake_r, 512)
                self._handle_events()
                if self._stopping and self._last_probe is None:
                    self._last_probe = self._probe()
                elif self._last_probe is None and timeline.wanted():
                    self._probe()
                if self._last_probe is not None and not self._probes:
                    return
        except Exception as exc:  # the X server went away; the recorder notices elsewhere
            log.warning("the focus watcher stopped: %s", type(exc).__name__)
        finally:
            timeline.detach(
                final=self._final_stop and self._last_probe is not None and not self._probes
            )
            self.ready.set()
            try:
                display.close()
            except Exception as exc:
                log.debug("closing the focus connection: %s", type(exc).__name__)

    # -- events -------------------------------------------------------------------

    def _handle_events(self) -> None:
        """Everything queued on the connection, in the order the server sent it."""
        from Xlib import X

        display = self._display
        moves: list[tuple[int, int | None]] = []  # (server time, as `_top`)
        created = False
        while display.pending_events():
            event = display.next_event()
            serial = getattr(event, "sequence_number", None)
            pending = self._unwatched_until
            if pending is not None and serial is not None and not _serial_before(serial, pending):
                self._unwatched_until = None  # from here on, new windows are watched
            if event.type == _GENERIC_EVENT and getattr(event, "extension", None) == self._xi:
                self._focus_event(event, moves)
            elif event.type == X.CreateNotify and event.parent == self._root:
                if self._watch(event.window):
                    created = True
                    # Focus events the server sent before it had this request
                    # may hide a visit to the new window (see _focus_event).
                    self._unwatched_until = (self._display.display.request_serial - 1) % 65536
            elif event.type == X.PropertyNotify and event.window == self._probe_window:
                self._report_moves(moves)
                moves = []
                if created and not self._grabbed_away:
                    self._check_focus()
                    created = False
                token = self._probes.popleft()
                final = token == self._last_probe and self._final_stop
                self._timeline.confirm(event.time, token, time.monotonic_ns(), final=final)
                if not self.ready.is_set():
                    self.ready.set()
        self._report_moves(moves)
        if (created or self._top == _ELSEWHERE) and not self._grabbed_away:
            self._check_focus()

    def _focus_event(self, event: Any, moves: list[tuple[int, int | None]]) -> None:
        if event.evtype not in (_XI_FOCUS_IN, _XI_FOCUS_OUT):
            return
        _, stamp, _, mode, detail, _, wid = _XI_FOCUS.unpack_from(event.data)
        current = moves[-1][1] if moves else self._top
        if event.evtype == _XI_FOCUS_IN:
            window = None if wid == self._root.id else wid
            self._grabbed_away = False
            if moves and moves[-1] == (stamp, _ELSEWHERE) and self._unwatched_until is None:
                # Where the focus went when it left. Not while a new window may
                # still be unwatched: the focus may have been in it in between.
                moves[-1] = (stamp, window)
                return
        elif detail != _XI_INFERIOR and wid == current:
            # It left: for a window we watch, its FocusIn follows at once; if
            # none does, it went to one we do not watch yet, judged unknown.
            window = _ELSEWHERE
            self._grabbed_away = mode in _XI_GRAB_MODES
        else:
            return
        # Every step counts, even within one millisecond: the keys of that
        # millisecond may have gone to any window the focus passed through.
        moves.append((stamp, window))

    def _report_moves(self, moves: list[tuple[int, int | None]]) -> None:
        for stamp, wid in moves:
            if wid == self._top:
                continue
            self._top = wid
            self._timeline.timed(stamp, self._describe(wid))

    def _check_focus(self) -> None:
        """Ask where the focus is, and watch that window: it may be one created
        (and focused) before its CreateNotify reached us, whose FocusIn nobody
        sent us. Until now its state was unknown (excluded); from the next
        watermark it is what this finds."""
        wid = self._locate()
        if wid is not None and wid != _ELSEWHERE:
            self._watch(self._display.create_resource_object("window", wid))
        if wid != self._top:
            self._top = wid
            self._timeline.untimed(self._describe(wid))

    def _locate(self) -> int | None:
        """The top-level window with the keyboard focus now, as `_top`."""
        from Xlib import X
        from Xlib import error as xerror

        try:
            focus = self._display.get_input_focus().focus
            if focus == X.PointerRoot:  # keys go to the window under the pointer
                focus = self._root.query_pointer().child
            if isinstance(focus, int) or focus.id in (0, self._root.id):
                return None
            window = focus
            while True:
                parent = window.query_tree().parent
                if isinstance(parent, int) or parent.id in (0, self._root.id):
                    return int(window.id)
                window = parent
        except (xerror.BadWindow, xerror.BadDrawable) as exc:
            log.debug("the focused window vanished: %s", type(exc).__name__)
            return _ELSEWHERE

    def _watch(self, window: Any) -> bool:
        """Select XI2 focus events on `window`; False if it vanished first."""
        from Xlib import error as xerror
        from Xlib.ext import xinput

        if window == getattr(self, "_probe_window", None):
            return False
        try:
            xinput.select_events(window, [(_XI_ALL_MASTERS, _XI_FOCUS_MASK)])
        except (xerror.BadWindow, xerror.BadDrawable) as exc:
            log.debug("a new window vanished: %s", type(exc).__name__)
            return False
        return True

    def _probe(self) -> int:
        """Send a watermark probe; its PropertyNotify confirms it."""
        from Xlib import X

        token = self._timeline.probe_token()
        self._probes.append(token)
        self._probe_window.change_property(
            self._probe_atom, self._probe_atom, 8, b"", X.PropModeAppend
        )
        self._display.flush()
        return token

    # -- describing a window ---------------------------------------------------------

    def _report_start(self) -> None:
        """The focus at start: asked, since no event told of it."""
        self._top = self._locate()
        self._timeline.untimed(self._describe(self._top))

    def _describe(self, wid: int | None) -> FocusText | None:
        """(class, title) of the application in window `wid`; None if it vanished.

        The class is looked for on the window and below it (a window manager
        may focus its frame, whose child is the application's window).
        """
        from Xlib import error as xerror

        if wid is None:
            self.current = (None, None)
            return self.current
        if wid == _ELSEWHERE:
            self.current = (None, None)
            return None
        try:
            window = self._display.create_resource_object("window", wid)
            found = self._with_class(window)
            if found is None:
                described: FocusText = (None, None)
            else:
                owner, wm_class = found
                title = self._title(owner) if self.titles else None
                described = (wm_class[1] or wm_class[0], title)
        except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch) as exc:
            # Closed already: as it was when it last had the focus, else unknown
            # (a prompt could have come and gone before we could read its class).
            log.debug("the focused window vanished: %s", type(exc).__name__)
            known = self._seen.get(wid)
            self.current = known or (None, None)
            return known
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()
        self._seen[wid] = self.current = described
        return described

    def _with_class(self, window: Any) -> tuple[Any, tuple[str, str]] | None:
        level = [window]
        for _ in range(3):  # the window, its children and grandchildren
            following = []
            for candidate in level:
                wm_class = candidate.get_wm_class()
                if wm_class:
                    return candidate, wm_class
                following.extend(candidate.query_tree().children)
            level = following
        return None

    def _title(self, window: Any) -> str | None:
        prop = window.get_full_property(self._net_wm_name, self._utf8)
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return str(name) if name else None
