"""X11 capture: pynput listeners for input, python-xlib for the focused window.

pynput and Xlib are imported inside the methods: pynput raises ImportError at
import time with no (or a bad) DISPLAY, and nothing may touch the display
before consent and `check_display`.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import threading
import time
from typing import Any

from cleartrace.capture.base import FocusHandler, Sink
from cleartrace.errors import DisplayUnavailable
from cleartrace.events import Kind, keysym_of_char

__all__ = ["X11Backend"]

log = logging.getLogger(__name__)

_KEY_DOWN, _KEY_UP = int(Kind.KEY_DOWN), int(Kind.KEY_UP)
_MOVE, _BTN_DOWN, _BTN_UP = int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP)
_SCROLL = int(Kind.SCROLL)
_JOIN_TIMEOUT = 2.0  # the longest a stop_* may take
_QUICK_JOIN = 0.5  # after this, provoke an event (see _stop_listener)
_START_TIMEOUT = 5.0
_POLL_NO_WM = 0.25  # focus check period without an EWMH window manager


class _Switch:
    """Turned off before a listener stops, so a late event is never enqueued."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def _keysym(key: Any) -> int:
    """The X keysym of a pynput key, in the encoding `cleartrace.events` decodes.

    A character is encoded from the character itself (so 'é' and '€' get the
    same keysym whatever the keyboard layout called them); special keys and
    characterless codes carry their keysym as `vk` on X11. A dead key carries
    its spacing accent as `char` (U+00B4 for dead_acute), which that accent
    typed on its own has too, so it is recorded by its dead keysym instead.
    """
    if isinstance(key, enum.Enum):  # pynput.keyboard.Key wraps a KeyCode
        return int(getattr(key.value, "vk", None) or 0)
    if getattr(key, "is_dead", False) and getattr(key, "vk", None):
        return int(key.vk)
    char = getattr(key, "char", None)
    if char is not None and len(char) == 1:
        return keysym_of_char(char)
    return int(getattr(key, "vk", None) or 0)


def _display_error(what: str, exc: BaseException) -> DisplayUnavailable:
    return DisplayUnavailable(
        f"cannot install the {what} hook on the X display {os.environ.get('DISPLAY', '')!r} "
        f"({type(exc).__name__}); run 'cleartrace status' to see why"
    )


def _poke(device: str) -> None:
    """Cause one harmless device event through XTEST on a connection of our own:
    Shift_L down and up, or the pointer moved one pixel there and back."""
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    display = Display()
    try:
        if device == "keyboard":
            code = display.keysym_to_keycode(XK.XK_Shift_L)
            xtest.fake_input(display, X.KeyPress, code)
            xtest.fake_input(display, X.KeyRelease, code)
        else:
            xtest.fake_input(display, X.MotionNotify, detail=1, x=1, y=0)
            xtest.fake_input(display, X.MotionNotify, detail=1, x=-1, y=0)
        display.sync()
    finally:
        display.close()


class _Hook:
    """One pynput listener with a clear life: start, wait until hooked, stop, join.

    Its thread's run() is wrapped so that an error there (the X server went
    away) is logged by type, without content, instead of reaching
    threading.excepthook; `error` keeps the type name for a start that failed.
    """

    __slots__ = ("device", "error", "listener", "names", "switch")

    def __init__(self, device: str, names: list[str]) -> None:
        self.device, self.names, self.switch = device, names, _Switch()
        self.listener: Any = None
        self.error: str | None = None

    def start(self, listener: Any) -> None:
        """Start `listener` and return once it is hooked.

        pynput's own wait() blocks for ever when the thread dies before it is
        ready (no RECORD, no server), so poll its flag with a deadline instead.

        Raises:
            DisplayUnavailable: the thread ended or hung before hooking.
        """
        self.listener, run = listener, listener.run

        def guarded_run() -> None:
            try:
                run()
            except Exception as exc:
                self.error = type(exc).__name__
                log.warning("the %s listener ended: %s", self.device, self.error)

        listener.run = guarded_run
        listener.daemon = True
        listener.start()
        if not hasattr(listener, "_ready"):  # a future pynput: trust its wait()
            listener.wait()
            return
        deadline = time.monotonic() + _START_TIMEOUT
        while not listener._ready:
            if not listener.is_alive() or time.monotonic() > deadline:
                # Not stop(): pynput's stop() waits for a listener that never
                # became ready, for ever. Switched off, the thread (a daemon)
                # enqueues nothing should it still wake up.
                self.switch.on = False
                raise DisplayUnavailable(
                    f"the X server did not let ClearTrace install the {self.device} hook "
                    f"({self.error or 'no answer'}); it needs the RECORD extension: run "
                    "'cleartrace status' for the reason"
                )
            time.sleep(0.005)

    def alive(self) -> bool:
        return bool(self.listener.is_alive())

    def stop(self) -> None:
        """Stop the listener and return once its thread has ended (<= 2 s).

        pynput's stop() queues the RECORD disable request, unflushed, on the
        connection its thread is blocked reading, so on an idle display the
        thread lives until the next device event and later dies with
        ConnectionClosedError when the X server exits (PLATFORM-NOTES). Sending
        the disable on the listener's other, idle connection ends the read at
        once without any input. Should that fail (other pynput internals), one
        XTEST event of the device's class wakes it; the switch is already off,
        so that event is never enqueued.
        """
        self.switch.on = False
        listener = self.listener
        try:
            listener.stop()
            listener._display_stop.record_disable_context(listener._context)
            listener._display_stop.flush()
        except Exception as exc:  # closed by its thread already, or the server is gone
            log.debug("stopping the %s listener: %s", self.device, type(exc).__name__)
        deadline = time.monotonic() + _JOIN_TIMEOUT
        self._join(_QUICK_JOIN)
        if listener.is_alive():
            try:
                _poke(self.device)
            except Exception as exc:
                log.warning("cannot wake the %s listener: %s", self.device, type(exc).__name__)
            self._join(max(0.0, deadline - time.monotonic()))
        if listener.is_alive():
            log.warning("the %s listener did not end within %.0f s", self.device, _JOIN_TIMEOUT)

    def _join(self, timeout: float) -> None:
        try:  # pynput's join() re-raises an error from a callback
            self.listener.join(timeout)
        except Exception as exc:
            log.warning("the %s listener failed: %s", self.device, type(exc).__name__)


class X11Backend:
    """pynput keyboard and mouse listeners plus a focus watcher thread.

    Not thread-safe: one owner (the recorder, under its lock) starts and stops
    hooks. Callbacks run on pynput's threads and only stamp and enqueue.
    """

    name = "x11"

    def __init__(self) -> None:
        self._keyboard: _Hook | None = None
        self._mouse: _Hook | None = None
        self._focus: _FocusWatcher | None = None

    def start_keyboard(self, sink: Sink) -> None:
        """Hook the keyboard; restarts a running keyboard hook.

        Raises:
            DisplayUnavailable: pynput cannot load or hook this display.
        """
        self.stop_keyboard()
        try:
            from pynput import keyboard
        except ImportError as exc:
            raise _display_error("keyboard", exc) from exc
        hook = _Hook("keyboard", ["keyboard"])
        switch, put, mono, code = hook.switch, sink.queue.put, time.monotonic_ns, _keysym

        def on_press(key: Any) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _KEY_DOWN, code(key), 0, 0, 0, None))

        def on_release(key: Any) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _KEY_UP, code(key), 0, 0, 0, None))

        hook.start(keyboard.Listener(on_press=on_press, on_release=on_release))
        self._keyboard = hook

    def stop_keyboard(self) -> None:
        """Remove the keyboard hook; returns once its thread has ended."""
        if self._keyboard is not None:
            hook, self._keyboard = self._keyboard, None
            hook.stop()

    def start_mouse(self, sink: Sink, *, moves: bool, clicks: bool, scrolls: bool) -> None:
        """Hook only the mouse events asked for; restarts a running mouse hook.

        pynput dispatches an event only to a callback that exists, so a category
        without consent is not filtered: it never reaches Python at all.

        Raises:
            DisplayUnavailable: pynput cannot load or hook this display.
        """
        self.stop_mouse()
        if not (moves or clicks or scrolls):
            return
        try:
            from pynput import mouse
        except ImportError as exc:
            raise _display_error("mouse", exc) from exc
        names = [n for n, on in (("mouse.move", moves), ("mouse.click", clicks)) if on]
        hook = _Hook("mouse", names + (["mouse.scroll"] if scrolls else []))
        switch, put, mono = hook.switch, sink.queue.put, time.monotonic_ns

        def on_move(x: int, y: int) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _MOVE, x, y, 0, 0, None))

        def on_click(x: int, y: int, button: Any, pressed: bool) -> None:
            if switch.on and not sink.excluded:
                # Button.left/middle/right/buttonN carry their X number, unknown None.
                put((mono(), _BTN_DOWN if pressed else _BTN_UP, x, y, button.value or 0, 0, None))

        def on_scroll(x: int, y: int, dx: int, dy: int) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _SCROLL, x, y, dx, dy, None))

        listener = mouse.Listener(
            on_move=on_move if moves else None,
            on_click=on_click if clicks else None,
            on_scroll=on_scroll if scrolls else None,
        )
        hook.start(listener)
        self._mouse = hook

    def stop_mouse(self) -> None:
        """Remove the mouse hook; returns once its thread has ended."""
        if self._mouse is not None:
            hook, self._mouse = self._mouse, None
            hook.stop()

    def start_focus(self, handler: FocusHandler, *, titles: bool) -> None:
        """Watch the focus; the current focus is reported before this returns.

        Restarts a running watcher.

        Raises:
            DisplayUnavailable: the display cannot be opened.
        """
        self.stop_focus()
        watcher = _FocusWatcher(handler, titles=titles)
        watcher.start()
        watcher.ready.wait(_JOIN_TIMEOUT)
        self._focus = watcher

    def stop_focus(self) -> None:
        """Stop the focus watcher; returns at once (it sleeps on a self-pipe)."""
        if self._focus is not None:
            watcher, self._focus = self._focus, None
            watcher.stop()

    def focused(self) -> tuple[str | None, str | None]:
        """The last reported (class, title); (None, None) when not watching."""
        return (None, None) if self._focus is None else self._focus.current

    def hooks(self) -> list[str]:
        """The hooks whose threads run now, e.g. ["keyboard", "mouse.click", "focus"]."""
        out = []
        for hook in (self._keyboard, self._mouse):
            if hook is not None and hook.alive():
                out.extend(hook.names)
        if self._focus is not None and self._focus.is_alive():
            out.append("focus")
            if self._focus.titles:
                out.append("focus.titles")
        return out

    def close(self) -> None:
        """Remove every hook; idempotent."""
        self.stop_keyboard()
        self.stop_mouse()
        self.stop_focus()


class _FocusWatcher(threading.Thread):
    """Reports the focused window's class (and title, if allowed) on every change.

    It has its own X connection, opened on the caller's thread so that a failure
    raises there. With an EWMH window manager it sleeps in select() until
    `_NET_ACTIVE_WINDOW` changes on the root window; without one it checks the
    input focus every 250 ms (one round trip when nothing changed). A self-pipe
    in the same select() lets stop() wake it at once.
    """

    def __init__(self, handler: FocusHandler, *, titles: bool) -> None:
        from Xlib import X
        from Xlib.display import Display

        super().__init__(name="cleartrace-focus", daemon=True)
        self.titles = titles
        self.ready = threading.Event()
        self.current: tuple[str | None, str | None] = (None, None)
        self._handler = handler
        try:
            self._display = Display()
        except Exception as exc:  # DisplayError, ConnectionClosedError, OSError
            raise _display_error("focus", exc) from exc
        try:
            self._root = self._display.screen().root
            atom = self._display.intern_atom
            self._net_active = atom("_NET_ACTIVE_WINDOW")
            self._net_wm_name = atom("_NET_WM_NAME")
            self._utf8 = atom("UTF8_STRING")
            supported = self._root.get_full_property(atom("_NET_SUPPORTED"), X.AnyPropertyType)
            self.ewmh = supported is not None and self._net_active in supported.value
            if self.ewmh:
                self._root.change_attributes(event_mask=X.PropertyChangeMask)
                self._display.flush()
        except Exception as exc:
            self._display.close()
            raise _display_error("focus", exc) from exc
        self._wake_r, self._wake_w = os.pipe()
        self._last_window: int | None = -1  # the reported window (-1: none yet)
        self._last_focus: int | None = -1  # the raw input focus (fallback mode)

    def stop(self) -> None:
        """Wake the thread, wait for it (≤ 2 s) and release its resources."""
        os.write(self._wake_w, b"x")
        self.join(_JOIN_TIMEOUT)
        if self.is_alive():
            log.warning("the focus watcher did not end within %.0f s", _JOIN_TIMEOUT)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def run(self) -> None:
        from Xlib import X

        display = self._display
        try:
            self._report()
            self.ready.set()
            fd, timeout = display.fileno(), None if self.ewmh else _POLL_NO_WM
            while True:
                readable, _, _ = select.select([fd, self._wake_r], [], [], timeout)
                if self._wake_r in readable:
                    return
                changed = not self.ewmh
                # pending_events() reads what select() saw; a closed connection raises.
                while display.pending_events():
                    event = display.next_event()
                    if event.type == X.PropertyNotify and event.atom == self._net_active:
                        changed = True
                if changed:
                    self._report()
        except Exception as exc:  # the X server went away; the recorder notices elsewhere
            log.warning("the focus watcher stopped: %s", type(exc).__name__)
        finally:
            self.ready.set()
            try:
                display.close()
            except Exception as exc:
                log.debug("closing the focus connection: %s", type(exc).__name__)

    def _report(self) -> None:
        """Call the handler if the focused window changed since the last call."""
        from Xlib import error as xerror

        try:
            window = self._active() if self.ewmh else None
            if window is None:
                window = self._input_focus()
                if window == -1:  # fallback: the input focus did not move
                    return
            wid = None if window is None else window.id
            if wid == self._last_window:
                return
            app = title = None
            if window is not None:
                wm_class = window.get_wm_class()
                if wm_class:
                    app = wm_class[1] or wm_class[0]
                if self.titles:
                    title = self._title(window)
        except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch) as exc:
            # The window vanished between two requests; the next change reports.
            log.debug("the focused window vanished: %s", type(exc).__name__)
            self._last_focus = -1
            return
        self._last_window = wid
        self.current = (app, title)
        try:
            self._handler(time.monotonic_ns(), app, title)
        except Exception as exc:  # the recorder's bug must not end focus tracking
            log.warning("the focus handler failed: %s", type(exc).__name__)

    def _active(self) -> Any:
        from Xlib import X

        prop = self._root.get_full_property(self._net_active, X.AnyPropertyType)
        if prop is None or not len(prop.value) or not prop.value[0]:
            return None
        return self._display.create_resource_object("window", int(prop.value[0]))

    def _input_focus(self) -> Any:
        """The first ancestor of the input focus that has WM_CLASS, None if none,
        -1 if the input focus is the same window as at the last check."""
        focus = self._display.get_input_focus().focus
        raw = focus if isinstance(focus, int) else focus.id
        if raw == self._last_focus and not self.ewmh:
            return -1
        self._last_focus = raw
        window = None if isinstance(focus, int) else focus
        while window is not None and window.id != self._root.id:
            if window.get_wm_class():
                return window
            window = window.query_tree().parent
            if isinstance(window, int) or window.id == 0:
                return None
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
