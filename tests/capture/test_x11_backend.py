"""The X11 backend on its own: hooks, their callbacks, and the focus watcher."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleartrace.capture._x11 import Switch, X11Backend, key_callbacks
from cleartrace.capture.base import Sink, StampedEvent
from cleartrace.capture.display import check_display, display_support
from cleartrace.capture.timeline import FocusedWindow, FocusState, FocusTimeline
from cleartrace.errors import DisplayUnavailable
from cleartrace.events import FocusText, Kind
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver


@pytest.fixture
def backend(xserver: Any) -> Iterator[X11Backend]:
    b = X11Backend()
    yield b
    b.close()


def _take(sink: Sink, into: list[StampedEvent]) -> list[StampedEvent]:
    while not sink.queue.empty():
        into.append(sink.queue.get_nowait())
    return into


def drain(sink: Sink, until: Callable[[list[StampedEvent]], bool]) -> list[StampedEvent]:
    """The events enqueued so far, once `until(events)` holds (the expected ones arrived)."""
    out: list[StampedEvent] = []
    wait_for(lambda: until(_take(sink, out)), timeout=5, what="the expected events")
    return out


def settled(sink: Sink) -> list[StampedEvent]:
    """The events enqueued within 0.3 s, for checks that nothing (more) arrives.

    When no event is expected there is nothing to wait for; the pause is the
    time a wrongly hooked event would take to get here.
    """
    time.sleep(0.3)
    return _take(sink, [])


def kinds(events: list[StampedEvent]) -> list[int]:
    return [e[1] for e in events]


def test_key_callbacks_carry_keysyms(backend: X11Backend, xdo: Callable[..., str]) -> None:
    sink = Sink()
    backend.start_keyboard(sink)
    assert backend.hooks() == ["keyboard"]
    xdo("type", "--delay", "10", "aZ1")
    xdo("key", "BackSpace", "Return", "Tab")
    events = drain(sink, lambda got: len(got) >= 14)  # seven keys down and up
    downs = [e[2] for e in events if e[1] == Kind.KEY_DOWN]
    # Z is typed with Shift: its keysym is the capital's, after Shift_L (0xffe1).
    assert downs == [ord("a"), 0xFFE1, ord("Z"), ord("1"), 0xFF08, 0xFF0D, 0xFF09]


def test_key_callbacks_encode_pynputs_own_key_objects(xserver: Any) -> None:
    """Every shape of key pynput hands the callbacks, with the clock and server
    time they are stamped with: a special key (an Enum wrapping a KeyCode), a
    character below and above U+00FF, a dead key, and a code with no character."""
    from pynput.keyboard import Key, KeyCode

    put: list[StampedEvent] = []
    switch, stamp, clock = Switch(), [None], iter(range(100, 200)).__next__
    on_press, on_release = key_callbacks(put.append, switch, stamp, clock)
    keys = [
        Key.backspace,
        Key.shift_l,
        KeyCode.from_char("a"),
        KeyCode.from_char("é"),
        KeyCode.from_char("€"),
        KeyCode(vk=0xFE51, char="´", is_dead=True),  # as the X backend builds a dead key
        KeyCode.from_vk(0x1008FF11),
    ]
    on_press(keys[0])  # outside a dispatch: no server time, nothing enqueued
    stamp[0] = 7
    for key in keys:
        on_press(key)
    on_release(keys[0])
    switch.on = False
    on_press(keys[0])
    assert put == [
        (100, Kind.KEY_DOWN, 0xFF08, 0, 0, 0, None, 7),
        (101, Kind.KEY_DOWN, 0xFFE1, 0, 0, 0, None, 7),
        (102, Kind.KEY_DOWN, ord("a"), 0, 0, 0, None, 7),
        (103, Kind.KEY_DOWN, 0xE9, 0, 0, 0, None, 7),
        (104, Kind.KEY_DOWN, 0x010020AC, 0, 0, 0, None, 7),
        (105, Kind.KEY_DOWN, 0xFE51, 0, 0, 0, None, 7),  # dead_acute, not the accent
        (106, Kind.KEY_DOWN, 0x1008FF11, 0, 0, 0, None, 7),
        (107, Kind.KEY_UP, 0xFF08, 0, 0, 0, None, 7),
    ]


def test_a_callback_reached_outside_a_stamped_dispatch_enqueues_nothing(
    backend: X11Backend, xdo: Callable[..., str]
) -> None:
    """The server time is kept only while pynput dispatches the X event it
    belongs to: a callback reached any other way must not reuse the last one."""
    from pynput.keyboard import KeyCode

    sink = Sink()
    backend.start_keyboard(sink)
    xdo("key", "a")
    assert kinds(drain(sink, lambda got: len(got) >= 2)) == [Kind.KEY_DOWN, Kind.KEY_UP]
    hook = backend._keyboard
    assert hook is not None
    hook.listener.on_press(KeyCode.from_char("b"))
    assert sink.queue.empty()  # the callback runs here, synchronously: nothing to wait for


def test_keyboard_only_has_no_mouse_hook(backend: X11Backend, xdo: Callable[..., str]) -> None:
    sink = Sink()
    backend.start_keyboard(sink)
    xdo("mousemove", "200", "200")
    xdo("click", "1")
    assert settled(sink) == []


def test_clicks_only_registers_no_move_or_scroll_callback(
    backend: X11Backend, xdo: Callable[..., str]
) -> None:
    sink = Sink()
    backend.start_mouse(sink, moves=False, clicks=True, scrolls=False)
    assert backend.hooks() == ["mouse.click"]
    xdo("mousemove", "300", "310")
    xdo("click", "3")
    xdo("click", "5")
    events = drain(sink, lambda got: len(got) >= 2) + settled(sink)  # and no scroll after
    assert kinds(events) == [Kind.BUTTON_DOWN, Kind.BUTTON_UP]
    assert events[0][2:5] == (300, 310, 3)


def test_moves_and_scrolls(backend: X11Backend, xdo: Callable[..., str]) -> None:
    sink = Sink()
    backend.start_mouse(sink, moves=True, clicks=False, scrolls=True)
    xdo("mousemove", "123", "234")
    xdo("click", "4")
    xdo("click", "5")
    events = drain(sink, lambda got: sum(e[1] == Kind.SCROLL for e in got) >= 2)
    moves = [e for e in events if e[1] == Kind.MOVE]
    assert moves[-1][2:4] == (123, 234)
    scrolls = [e[2:6] for e in events if e[1] == Kind.SCROLL]
    assert scrolls == [(123, 234, 0, 1), (123, 234, 0, -1)]


def test_events_carry_the_server_time_of_the_x_event(
    backend: X11Backend, xserver: Any, xdo: Callable[..., str]
) -> None:
    from Xlib import X
    from Xlib.display import Display

    sink = Sink()
    backend.start_keyboard(sink)
    backend.start_mouse(sink, moves=False, clicks=True, scrolls=False)
    display = Display(xserver.display)
    try:  # a property change on our own window: its PropertyNotify has the server time
        window = display.screen().root.create_window(
            0, 0, 1, 1, 0, 0, X.InputOnly, X.CopyFromParent, event_mask=X.PropertyChangeMask
        )
        atom = display.intern_atom("_TEST_TIME")
        window.change_property(atom, atom, 8, b"")
        display.sync()
        xdo("key", "a")
        xdo("click", "1")
        window.change_property(atom, atom, 8, b"")
        display.sync()
        stamps = []
        while len(stamps) < 2:
            event = display.next_event()
            if event.type == X.PropertyNotify:
                stamps.append(event.time)
    finally:
        display.close()
    events = drain(sink, lambda got: len(got) >= 4)
    assert kinds(events) == [Kind.KEY_DOWN, Kind.KEY_UP, Kind.BUTTON_DOWN, Kind.BUTTON_UP]
    assert all(stamps[0] <= e[7] <= stamps[1] for e in events)
    assert [e[7] for e in events] == sorted(e[7] for e in events)


def test_stop_returns_quickly_on_an_idle_display(backend: X11Backend) -> None:
    sink = Sink()
    backend.start_keyboard(sink)
    backend.start_mouse(sink, moves=True, clicks=True, scrolls=True)
    before = {t.ident for t in threading.enumerate()}
    start = time.monotonic()
    backend.stop_keyboard()
    backend.stop_mouse()
    assert time.monotonic() - start < 2.0
    assert backend.hooks() == []
    assert len({t.ident for t in threading.enumerate()} & before) < len(before)
    backend.stop_keyboard()  # idempotent


def _focus_events(backend: X11Backend, titles: bool) -> list[FocusText | None]:
    seen: list[FocusText | None] = []

    def judge(window: FocusedWindow | None) -> FocusState:
        shown = None if window is None else (window.app, window.title)
        seen.append(shown)
        return FocusState(False, shown)

    backend.start_focus(FocusTimeline(judge), titles=titles)
    return seen


def test_focus_changes_with_a_window_manager(
    backend: X11Backend,
    wm: None,
    app_window: Callable[[str, str], str],
    xdo: Callable[..., str],
) -> None:
    one = app_window("Gedit", "first title")
    two = app_window("Xterm", "second title")
    seen = _focus_events(backend, titles=True)
    xdo("windowactivate", "--sync", one)
    wait_for(lambda: ("Gedit", "first title") in seen, timeout=5, what="the focus event")
    xdo("windowactivate", "--sync", two)
    wait_for(lambda: seen[-1] == ("Xterm", "second title"), timeout=5, what="the focus event")
    assert backend.hooks() == ["focus", "focus.titles"]


def test_focus_without_titles_never_reads_them(
    backend: X11Backend,
    wm: None,
    app_window: Callable[[str, str], str],
    xdo: Callable[..., str],
) -> None:
    one = app_window("Gedit", "private title")
    seen = _focus_events(backend, titles=False)
    xdo("windowactivate", "--sync", one)
    wait_for(lambda: ("Gedit", None) in seen, timeout=5, what="the focus event")
    assert all(title is None for _, title in seen)


def test_focus_falls_back_to_the_input_focus_without_a_window_manager(
    backend: X11Backend,
    app_window: Callable[[str, str], str],
    xdo: Callable[..., str],
) -> None:
    one = app_window("Gedit", "a")
    two = app_window("Xterm", "b")
    seen = _focus_events(backend, titles=True)
    xdo("windowfocus", "--sync", one)
    wait_for(lambda: ("Gedit", "a") in seen, timeout=5, what="the focus event")
    xdo("windowfocus", "--sync", two)
    wait_for(lambda: seen[-1] == ("Xterm", "b"), timeout=5, what="the focus event")
    start = time.monotonic()
    backend.stop_focus()
    assert time.monotonic() - start < 1.0


def test_check_display_accepts_a_working_x_server(xserver: Any) -> None:
    assert check_display() == xserver.display
    assert display_support() == (True, f"X11 display {xserver.display}")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DISPLAY is not set"),
        ({"DISPLAY": ":77"}, "cannot connect to the X display :77"),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "Wayland session"),
        ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "Wayland session"),
    ],
)
def test_check_display_explains_why_not(env: dict[str, str], message: str) -> None:
    with pytest.raises(DisplayUnavailable, match=message):
        check_display(env)
    ok, why = display_support(env)
    assert not ok
    assert message in why
