"""The X11 focus watcher: which window has the keyboard, stamped in the server's clock.

It selects XInput 2 focus events on the root window and every top-level
window (and on each new one, learnt from CreateNotify and ReparentNotify on
the root). An XI2 focus event carries the server time of the change, the
clock the input events are stamped in, so the writer can tell exactly which
keys came before it. Focus moves made by keyboard grabs (a PIN prompt grabbing the keyboard)
come as focus events too. Window managers move the input focus the same way,
so the same events serve with and without one; nothing is polled. The same
connection reads the screen and keyboard layouts (`_x11_context`).

The focus on the root window itself, on PointerRoot (the keys go to whatever
window is under the pointer, which moves with no focus event) or in a
keyboard grab on the root (a screen locker) is unknown: whatever window the
keys reach there cannot be named, so they count as excluded.

Watermarks: on request (`FocusTimeline.wanted`) it appends to a property of
a private, never mapped window; the PropertyNotify comes back stamped with
the server time, after every focus event the server sent before it. One is
also sent after `_IDLE_PROBE_S` of silence, so that the 32-bit server times
are never unwrapped across more than half their range (24.8 days).

python-xlib is imported inside the methods (see `cleartrace.capture._x11`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import threading
import time
from typing import Any

from cleartrace.capture._x11_client import ClientNamer
from cleartrace.capture._x11_context import ContextReader
from cleartrace.capture._x11_xi2 import (
    FOCUS_IN,
    FOCUS_OUT,
    GENERIC_EVENT,
    GRAB_MODES,
    NOTIFY_INFERIOR,
    NOTIFY_POINTER,
    UNREADABLE,
    UnreadableEvent,
    connect,
    display_error,
    read_focus,
    select_focus,
    serial_before,
)
from cleartrace.capture.timeline import FocusedWindow, FocusTimeline
from cleartrace.events import FocusText

__all__ = ["FocusWatcher"]

log = logging.getLogger(__name__)

_JOIN_TIMEOUT = 2.0
_SEEN_MAX = 4096
#: The focus left the window it was in for one not watched yet (or that vanished).
_ELSEWHERE = -1
_IDLE_PROBE_S = 300.0


class FocusWatcher(threading.Thread):
    """Reports every focus change to a `FocusTimeline`, and watermarks on request.

    Its X connection is opened on the caller's thread so that a failure raises
    there. The thread sleeps in select() on the connection and a self-pipe.
    """

    def __init__(self, timeline: FocusTimeline, *, titles: bool) -> None:
        """Raises:
        DisplayUnavailable: no display, no XInput 2, or an unusable python-xlib.
        """
        from Xlib import X

        super().__init__(name="cleartrace-focus", daemon=True)
        self.titles = titles
        self.ready = threading.Event()
        self.current: FocusText = (None, None)
        self._timeline = timeline
        self._display, self._xi = connect()
        display = self._display
        try:
            self._root = display.screen().root
            self._namer = ClientNamer(display, titles=titles)
            self._probe_atom = display.intern_atom("_CLEARTRACE_PROBE")
            self._probe_window = self._root.create_window(
                -1, -1, 1, 1, 0, 0, X.InputOnly, X.CopyFromParent,
                event_mask=X.PropertyChangeMask, override_redirect=True,
            )  # fmt: skip
            self._root.change_attributes(event_mask=X.SubstructureNotifyMask | X.PropertyChangeMask)
            self._context = ContextReader(display, self._root, timeline)
            self._watch(self._root)
            for window in self._root.query_tree().children:
                self._watch(window)
            display.sync()
        except Exception as exc:
            display.close()
            raise display_error(exc) from exc
        self._wake_r, self._wake_w = os.pipe()
        # Both ends: a stuck thread must not make wake() block (under its lock)
        # once the pipe is full; a full pipe wakes the thread all the same.
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # wake() may run on any thread as the pipe is closed (by the thread as
        # it ends, or by stop() if it never ran): the flag, under the lock, says so.
        self._pipe_lock = threading.Lock()
        self._pipe_closed = False
        self._stopping = self._final_stop = False
        self._probes: collections.deque[int] = collections.deque()
        self._last_probe: int | None = None  # the token of the last probe, sent at stop
        # The top-level window the focus is in: None for none (the root, or no
        # focus), _ELSEWHERE while it is in a window not watched yet.
        self._top: int | None = None
        self._seen: dict[int, FocusedWindow] = {}  # what each focused window was
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
        if self.is_alive():  # it closes its pipe itself when it ends
            log.warning("the focus watcher did not end within %.0f s", _JOIN_TIMEOUT)
        elif self.ident is None:  # never started
            self._close_pipe()

    def wake(self) -> None:
        """Make the thread look at its requests now (any thread)."""
        with self._pipe_lock:
            if self._pipe_closed:  # the thread ended: nothing is watched any more
                return
            # A full pipe (BlockingIOError) wakes the thread all the same.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _close_pipe(self) -> None:
        with self._pipe_lock:
            if not self._pipe_closed:
                self._pipe_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def run(self) -> None:
        display, timeline = self._display, self._timeline
        try:
            self._report_start()
            timeline.attach(self.wake)
            self._probe()
            fd = display.fileno()
            while True:
                idle = False
                if not display.pending_events():
                    readable, _, _ = select.select([fd, self._wake_r], [], [], _IDLE_PROBE_S)
                    if self._wake_r in readable:
                        os.read(self._wake_r, 512)
                    idle = not readable
                self._handle_events()
                if self._stopping and self._last_probe is None:
                    self._last_probe = self._probe()
                elif self._last_probe is None and (timeline.wanted() or idle):
                    self._probe()
                if self._last_probe is not None and not self._probes:
                    return
        except UnreadableEvent:
            log.warning("the focus watcher stopped: %s", UNREADABLE)
        except Exception as exc:  # the X server went away; the recorder notices it dead
            log.warning("the focus watcher stopped: %s", type(exc).__name__)
        finally:
            timeline.detach(
                self.wake,
                final=self._final_stop and self._last_probe is not None and not self._probes,
            )
            self.ready.set()
            self._close_pipe()
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
        created = synced = False
        while True:
            if not display.pending_events():
                if synced or not (moves and moves[-1][1] == _ELSEWHERE):
                    break
                # A FocusOut read without its FocusIn: the server sends both at
                # once, but they may arrive apart. One round trip brings it.
                display.sync()
                synced = True
                continue
            event = display.next_event()
            serial = getattr(event, "sequence_number", None)
            pending = self._unwatched_until
            if pending is not None and serial is not None and not serial_before(serial, pending):
                self._unwatched_until = None  # from here on, new windows are watched
            if event.type == GENERIC_EVENT and getattr(event, "extension", None) == self._xi:
                self._focus_event(event, moves)
            elif (
                event.type in (X.CreateNotify, X.ReparentNotify)
                and event.parent == self._root
                and self._watch(event.window)
            ):
                created = True
                # Focus events the server sent before it had this request
                # may hide a visit to the new window (see _focus_event).
                self._unwatched_until = (self._display.display.request_serial - 1) % 65536
            elif (
                event.type == X.PropertyNotify
                and event.window == self._probe_window
                and event.atom == self._probe_atom
                and event.state == X.PropertyNewValue
                and self._probes
            ):
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
            else:  # the screen or keyboard layout changed, or nothing of ours
                self._context.handle(event)
        self._report_moves(moves)
        if (created or self._top == _ELSEWHERE) and not self._grabbed_away:
            self._check_focus()

    def _focus_event(self, event: Any, moves: list[tuple[int, int | None]]) -> None:
        if event.evtype not in (FOCUS_IN, FOCUS_OUT):
            return
        stamp, mode, detail, wid = read_focus(event)
        if detail == NOTIFY_POINTER:
            return  # the focus is on PointerRoot: the root's own event says so
        current = moves[-1][1] if moves else self._top
        on_root = wid == self._root.id
        if event.evtype == FOCUS_IN:
            window = None if on_root else wid  # the root: unknown (see the module)
            # A grab on the root (a screen locker) is still away: asking the server
            # where the focus is would name the window the locker took it from.
            self._grabbed_away = on_root and mode in GRAB_MODES
            if moves and moves[-1] == (stamp, _ELSEWHERE) and self._unwatched_until is None:
                # Where the focus went when it left. Not while a new window may
                # still be unwatched: the focus may have been in it in between.
                moves[-1] = (stamp, window)
                return
        elif (detail != NOTIFY_INFERIOR and wid == current) or (on_root and current is None):
            # (The root loses the focus to a window below it with Inferior.)
            # It left: for a window we watch, its FocusIn follows at once; if
            # none does, it went to one we do not watch yet, judged unknown.
            window = _ELSEWHERE
            self._grabbed_away = mode in GRAB_MODES
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
        from Xlib import error as xerror

        try:
            focus = self._display.get_input_focus().focus
            # PointerRoot (the keys follow the pointer), the root, or none: unknown.
            if isinstance(focus, int) or focus.id in (0, self._root.id):
                return None
            window = focus
            while True:
                parent = window.query_tree().parent
                if isinstance(parent, int) or parent.id in (0, self._root.id):
                    return int(window.id)
                window = parent
        except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch) as exc:
            log.debug("the focused window vanished: %s", type(exc).__name__)
            return _ELSEWHERE

    def _watch(self, window: Any) -> bool:
        """Select XI2 focus events on `window` (see `select_focus`); False for the probe window."""
        if window == self._probe_window:
            return False
        select_focus(window)
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
        """The focus and the context at start: asked, since no event told of them."""
        self._context.report_all()
        self._top = self._locate()
        self._timeline.untimed(self._describe(self._top))

    def _describe(self, wid: int | None) -> FocusedWindow | None:
        """(class, title) of the application in window `wid`; None if unknown
        (the root, PointerRoot, no class to name it by, or it vanished)."""
        from Xlib import error as xerror

        self.current = (None, None)
        if wid is None or wid == _ELSEWHERE:
            return None
        try:
            described = self._namer.name(self._display.create_resource_object("window", wid))
        except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch) as exc:
            # Closed already: as it was when it last had the focus, else unknown
            # (a prompt could have come and gone before we could read its class).
            log.debug("the focused window vanished: %s", type(exc).__name__)
            known = self._seen.get(wid)
            self.current = (None, None) if known is None else (known.app, known.title)
            return known
        if described is None:
            return None
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()
        self._seen[wid] = described
        self.current = (described.app, described.title)
        return described
