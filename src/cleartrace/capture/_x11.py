"""X11 capture: pynput listeners for input, python-xlib for the focused window.

Every event is queued with the X server's time of the event as well as the
monotonic time of its callback: exclusion is decided by the server time,
against the focus watcher's timeline (`cleartrace.capture.timeline`).

pynput and Xlib are imported inside the methods: pynput raises ImportError at
import time with no (or a bad) DISPLAY, and nothing may touch the display
before consent and `check_display`.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from cleartrace.capture._dbus_saver import BusScreenSaver
from cleartrace.capture._x11_focus import FocusWatcher
from cleartrace.capture._x11_saver import ScreenSaver
from cleartrace.capture.base import Sink, StampedEvent
from cleartrace.capture.timeline import FocusTimeline
from cleartrace.errors import DisplayUnavailable
from cleartrace.events import UNICODE_KEYSYM, Kind

__all__ = ["Switch", "X11Backend", "key_callbacks", "mouse_callbacks"]

log = logging.getLogger(__name__)

_KEY_DOWN, _KEY_UP = int(Kind.KEY_DOWN), int(Kind.KEY_UP)
_MOVE, _BTN_DOWN, _BTN_UP = int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP)
_SCROLL = int(Kind.SCROLL)
_JOIN_TIMEOUT = 2.0  # the longest a stop_* may take
_QUICK_JOIN = 0.5  # after this, provoke an event (see _stop_listener)
_START_TIMEOUT = 5.0


class Switch:
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

    It runs inside the hook for every key, so it reads attributes directly:
    an Enum's `value` is a Python-level property (about a microsecond), its
    `_value_` a plain attribute; `keysym_of_char` is inlined.
    """
    if isinstance(key, enum.Enum):  # pynput.keyboard.Key wraps a KeyCode
        return int(key._value_.vk or 0)
    vk, char = key.vk, key.char
    if vk and key.is_dead:
        return int(vk)
    if char is not None and len(char) == 1:
        cp = ord(char)
        return cp if cp < 0x100 else UNICODE_KEYSYM | cp
    return int(vk or 0)


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


def _stamping(
    handle: Callable[[Any, Any, bool], None], stamp: list[int | None]
) -> Callable[[Any, Any, bool], None]:
    """Wrap pynput's dispatch of one X event so that its callbacks can read the
    event's server time in `stamp` (pynput hands them a key or a position, not
    the event), and nothing else can."""

    def stamped(display: Any, event: Any, injected: bool) -> None:
        stamp[0] = event.time
        try:
            handle(display, event, injected)
        finally:
            stamp[0] = None

    return stamped


Put = Callable[[StampedEvent], None]


def key_callbacks(
    put: Put, switch: Switch, stamp: list[int | None], mono: Callable[[], int] = time.monotonic_ns
) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
    """pynput's on_press and on_release: stamp the key with `mono()` and the
    server time in `stamp`, and `put` it; nothing more (see capture.base).

    An event without a server time cannot be placed: it is not enqueued.
    """
    code = _keysym

    def on_press(key: Any) -> None:
        if switch.on and (x := stamp[0]) is not None:
            put((mono(), _KEY_DOWN, code(key), 0, 0, 0, None, x))

    def on_release(key: Any) -> None:
        if switch.on and (x := stamp[0]) is not None:
            put((mono(), _KEY_UP, code(key), 0, 0, 0, None, x))

    return on_press, on_release


MouseCallbacks = tuple[
    Callable[[int, int], None],
    Callable[[int, int, Any, bool], None],
    Callable[[int, int, int, int], None],
]


def mouse_callbacks(
    put: Put, switch: Switch, stamp: list[int | None], mono: Callable[[], int] = time.monotonic_ns
) -> MouseCallbacks:
    """pynput's on_move, on_click and on_scroll, as `key_callbacks`."""

    def on_move(x: int, y: int) -> None:
        if switch.on and (t := stamp[0]) is not None:
            put((mono(), _MOVE, x, y, 0, 0, None, t))

    def on_click(x: int, y: int, button: Any, pressed: bool) -> None:
        if switch.on and (t := stamp[0]) is not None:
            # Button.left/middle/right/buttonN carry their X number, unknown None.
            put((mono(), _BTN_DOWN if pressed else _BTN_UP, x, y, button._value_ or 0, 0, None, t))

    def on_scroll(x: int, y: int, dx: int, dy: int) -> None:
        if switch.on and (t := stamp[0]) is not None:
            put((mono(), _SCROLL, x, y, dx, dy, None, t))

    return on_move, on_click, on_scroll


class _Hook:
    """One pynput listener with a clear life: start, wait until hooked, stop, join.

    Its thread's run() is wrapped so that an error there (the X server went
    away) is logged by type, without content, instead of reaching
    threading.excepthook; `error` keeps the type name for a start that failed.
    """

    __slots__ = ("device", "error", "listener", "names", "stamp", "switch")

    def __init__(self, device: str, names: list[str]) -> None:
        self.device, self.names, self.switch = device, names, Switch()
        self.listener: Any = None
        self.error: str | None = None
        # The server time of the event being dispatched, read by the callbacks;
        # None outside a dispatch, so that a callback reached any other way
        # (another pynput) enqueues nothing rather than a stale time.
        self.stamp: list[int | None] = [None]

    def start(self, listener: Any) -> None:
        """Start `listener` and return once it is hooked.

        pynput's own wait() blocks for ever when the thread dies before it is
        ready (no RECORD, no server), so poll its flag with a deadline instead.

        Raises:
            DisplayUnavailable: the thread ended or hung before hooking, or this
                pynput dispatches X events in a way the time stamping cannot wrap.
        """
        self.listener, run = listener, listener.run
        if not callable(getattr(listener, "_handle_message", None)):
            self.switch.on = False
            raise DisplayUnavailable(
                f"this pynput does not let ClearTrace read the X server time of "
                f"{self.device} events, which exclusion needs; install the pynput "
                "version ClearTrace requires"
            )
        listener._handle_message = _stamping(listener._handle_message, self.stamp)

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
        self._focus: FocusWatcher | None = None
        self._saver = ScreenSaver()
        self._bus_saver: BusScreenSaver | None = None  # listening from the first question

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
        on_press, on_release = key_callbacks(sink.queue.put, hook.switch, hook.stamp)
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
        on_move, on_click, on_scroll = mouse_callbacks(sink.queue.put, hook.switch, hook.stamp)
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

    def start_focus(self, timeline: FocusTimeline, *, titles: bool) -> None:
        """Watch the focus; the current focus is reported, and a first watermark
        confirmed, before this returns. Restarts a running watcher.

        Raises:
            DisplayUnavailable: the display cannot be opened, or has no XInput 2.
        """
        self.stop_focus()
        watcher = FocusWatcher(timeline, titles=titles)
        watcher.start()
        watcher.ready.wait(_JOIN_TIMEOUT)
        self._focus = watcher

    def stop_focus(self) -> None:
        """Stop the focus watcher after a final watermark (one round trip)."""
        if self._focus is not None:
            watcher, self._focus = self._focus, None
            watcher.stop(final=self._keyboard is None and self._mouse is None)

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

    def screen_locked(self) -> bool:
        """Whether the X screen saver, which lockers turn on, is on now, or the
        desktop's screen saver says on the session bus that it is active."""
        if self._bus_saver is None:
            self._bus_saver = BusScreenSaver()
            self._bus_saver.start()
        return self._saver.on() or self._bus_saver.active

    def close(self) -> None:
        """Remove every hook; idempotent."""
        self.stop_keyboard()
        self.stop_mouse()
        self.stop_focus()
        self._saver.close()
        bus_saver, self._bus_saver = self._bus_saver, None
        if bus_saver is not None:
            bus_saver.stop()  # its thread is joined
