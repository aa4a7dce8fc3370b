"""X11 capture: pynput listeners for input, python-xlib for the focused window.

pynput is imported inside the methods: with no (or a bad) DISPLAY it raises at
import time, and nothing may touch the display before consent and a check.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any

from cleartrace.capture.base import FocusHandler, Sink
from cleartrace.events import Kind, keysym_of_char

__all__ = ["X11Backend"]

log = logging.getLogger(__name__)

_KEY_DOWN, _KEY_UP = int(Kind.KEY_DOWN), int(Kind.KEY_UP)
_MOVE, _BTN_DOWN, _BTN_UP = int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP)
_SCROLL = int(Kind.SCROLL)
_JOIN_TIMEOUT = 2.0
_POLL_NO_WM = 0.25


class _Switch:
    """Turned off before a listener stops, so a late event is never enqueued."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def _keysym(key: Any) -> int:
    """The X keysym of a pynput key: its vk on X11, else its character."""
    if key is None:
        return 0
    code = getattr(key, "value", key)  # Key enum members wrap a KeyCode
    vk = getattr(code, "vk", None)
    if vk:
        return int(vk)
    char = getattr(code, "char", None)
    return keysym_of_char(char) if char and len(char) == 1 else 0


def _stop_listener(listener: Any, switch: _Switch) -> None:
    """Stop a pynput listener and wait until its thread has ended.

    pynput's stop() disables the RECORD context on the connection its thread is
    blocked reading, so on an idle display the thread lives until the next
    device event (pynput issue #375). Disabling it on the listener's second
    connection ends the blocking read at once, without injecting any input.
    """
    switch.on = False
    listener.stop()
    stop_display, context = (
        getattr(listener, "_display_stop", None),
        getattr(listener, "_context", None),
    )
    if stop_display is not None and context is not None:
        try:
            stop_display.record_disable_context(context)
            stop_display.flush()
        except Exception as exc:  # already closed by the listener thread itself
            log.debug("record context already gone: %s", type(exc).__name__)
    try:
        listener.join(_JOIN_TIMEOUT)
    except Exception as exc:  # an error in the hook thread, surfaced by pynput
        log.warning("input listener ended with %s", type(exc).__name__)
    if listener.is_alive():
        log.warning("input listener did not end within %.0f s", _JOIN_TIMEOUT)


class X11Backend:
    """pynput keyboard and mouse listeners plus a focus watcher thread."""

    name = "x11"

    def __init__(self) -> None:
        self._keyboard: tuple[Any, _Switch] | None = None
        self._mouse: tuple[Any, _Switch, list[str]] | None = None
        self._focus: _FocusWatcher | None = None

    # -- keyboard ------------------------------------------------------------------

    def start_keyboard(self, sink: Sink) -> None:
        from pynput import keyboard

        self.stop_keyboard()
        switch, put, mono, code = _Switch(), sink.queue.put, time.monotonic_ns, _keysym

        def on_press(key: Any) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _KEY_DOWN, code(key), 0, 0, 0, None))

        def on_release(key: Any) -> None:
            if switch.on and not sink.excluded:
                put((mono(), _KEY_UP, code(key), 0, 0, 0, None))

        listener = keyboard.Listener(on_press=on_press, on_release=on_release)
        listener.daemon = True
        listener.start()
        listener.wait()
        self._keyboard = (listener, switch)

    def stop_keyboard(self) -> None:
        if self._keyboard is not None:
            listener, switch = self._keyboard
            self._keyboard = None
            _stop_listener(listener, switch)

    # -- mouse ---------------------------------------------------------------------

    def start_mouse(self, sink: Sink, *, moves: bool, clicks: bool, scrolls: bool) -> None:
        """Only the callbacks asked for exist; pynput drops the other events unseen."""
        from pynput import mouse

        self.stop_mouse()
        switch, put, mono = _Switch(), sink.queue.put, time.monotonic_ns
        on_move = on_click = on_scroll = None
        hooks = []
        if moves:
            hooks.append("mouse.move")

            def on_move(x: int, y: int) -> None:
                if switch.on and not sink.excluded:
                    put((mono(), _MOVE, x, y, 0, 0, None))

        if clicks:
            hooks.append("mouse.click")

            def on_click(x: int, y: int, button: Any, pressed: bool) -> None:
                if switch.on and not sink.excluded:
                    number = getattr(button, "value", 0)
                    put(
                        (
                            mono(),
                            _BTN_DOWN if pressed else _BTN_UP,
                            x,
                            y,
                            number if isinstance(number, int) else 0,
                            0,
                            None,
                        )
                    )

        if scrolls:
            hooks.append("mouse.scroll")

            def on_scroll(x: int, y: int, dx: int, dy: int) -> None:
                if switch.on and not sink.excluded:
                    put((mono(), _SCROLL, x, y, dx, dy, None))

        if not hooks:
            return
        listener = mouse.Listener(on_move=on_move, on_click=on_click, on_scroll=on_scroll)
        listener.daemon = True
        listener.start()
        listener.wait()
        self._mouse = (listener, switch, hooks)

    def stop_mouse(self) -> None:
        if self._mouse is not None:
            listener, switch, _ = self._mouse
            self._mouse = None
            _stop_listener(listener, switch)

    # -- focus -----------------------------------------------------------------------

    def start_focus(self, handler: FocusHandler, *, titles: bool) -> None:
        self.stop_focus()
        watcher = _FocusWatcher(handler, titles=titles)
        watcher.start()
        watcher.ready.wait(_JOIN_TIMEOUT)
        self._focus = watcher

    def stop_focus(self) -> None:
        if self._focus is not None:
            watcher, self._focus = self._focus, None
            watcher.stop()

    # -- state -------------------------------------------------------------------------

    def hooks(self) -> list[str]:
        out = []
        if self._keyboard is not None:
            out.append("keyboard")
        if self._mouse is not None:
            out.extend(self._mouse[2])
        if self._focus is not None:
            out.append("focus")
            if self._focus.titles:
                out.append("focus.titles")
        return out

    def close(self) -> None:
        self.stop_keyboard()
        self.stop_mouse()
        self.stop_focus()


class _FocusWatcher(threading.Thread):
    """Reports the focused window's class (and title, if allowed) on every change.

    With an EWMH window manager it sleeps until `_NET_ACTIVE_WINDOW` changes on
    the root window; without one it checks the input focus every 250 ms.
    """

    def __init__(self, handler: FocusHandler, *, titles: bool) -> None:
        super().__init__(name="cleartrace-focus", daemon=True)
        self.titles = titles
        self.ready = threading.Event()
        self._handler = handler
        self._wake_r, self._wake_w = os.pipe()
        self._last: int | None = None

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self.join(_JOIN_TIMEOUT)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def run(self) -> None:
        from Xlib import X
        from Xlib.display import Display

        try:
            display = Display()
        except Exception as exc:
            log.warning("focus watcher cannot open the display: %s", type(exc).__name__)
            self.ready.set()
            return
        try:
            root = display.screen().root
            self._atoms = {
                name: display.intern_atom(name)
                for name in ("_NET_SUPPORTED", "_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "UTF8_STRING")
            }
            supported = root.get_full_property(self._atoms["_NET_SUPPORTED"], X.AnyPropertyType)
            ewmh = supported is not None and self._atoms["_NET_ACTIVE_WINDOW"] in supported.value
            if ewmh:
                root.change_attributes(event_mask=X.PropertyChangeMask)
                display.flush()
            self._report(display, root, ewmh)
            self.ready.set()
            fd = display.fileno()
            while True:
                readable, _, _ = select.select(
                    [fd, self._wake_r], [], [], None if ewmh else _POLL_NO_WM
                )
                if self._wake_r in readable:
                    return
                changed = not ewmh
                while display.pending_events():
                    event = display.next_event()
                    if (
                        event.type == X.PropertyNotify
                        and event.atom == self._atoms["_NET_ACTIVE_WINDOW"]
                    ):
                        changed = True
                if changed:
                    self._report(display, root, ewmh)
        except Exception as exc:  # the X server went away; the recorder notices elsewhere
            log.warning("focus watcher stopped: %s", type(exc).__name__)
        finally:
            self.ready.set()
            display.close()

    def _report(self, display: Any, root: Any, ewmh: bool) -> None:
        from Xlib import error as xerror

        try:
            window = self._active(display, root) if ewmh else None
            if window is None:
                window = self._input_focus(display, root)
            wid = None if window is None else window.id
            if wid == self._last:
                return
            self._last = wid
            app = title = None
            if window is not None:
                wm_class = window.get_wm_class()
                if wm_class:
                    app = wm_class[1] or wm_class[0]
                if self.titles:
                    title = self._title(window)
        except (xerror.XError, xerror.BadWindow, AttributeError) as exc:
            log.debug("focused window vanished: %s", type(exc).__name__)
            return
        self._handler(time.monotonic_ns(), app, title)

    def _active(self, display: Any, root: Any) -> Any:
        from Xlib import X

        prop = root.get_full_property(self._atoms["_NET_ACTIVE_WINDOW"], X.AnyPropertyType)
        if prop is None or not prop.value or not prop.value[0]:
            return None
        return display.create_resource_object("window", prop.value[0])

    @staticmethod
    def _input_focus(display: Any, root: Any) -> Any:
        window = display.get_input_focus().focus
        while window and not isinstance(window, int) and window.id != root.id:
            if window.get_wm_class():
                return window
            window = window.query_tree().parent
        return None

    def _title(self, window: Any) -> str | None:
        prop = window.get_full_property(self._atoms["_NET_WM_NAME"], self._atoms["UTF8_STRING"])
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        return str(name) if name else None
