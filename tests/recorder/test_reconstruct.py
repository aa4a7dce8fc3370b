"""Reconstruction against a real Qt text field: typed with corrections on Xvfb, then compared."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, status
from tests.support.text_window import TextField
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

APP = "Textfield"


@pytest.fixture
def text_field(
    request: pytest.FixtureRequest, xserver: Any, wm: None, xdo: Callable[..., str]
) -> Iterator[TextField]:
    """A focused QPlainTextEdit, or with the parameter "line" a QLineEdit (Qt on xcb,
    whatever the suite's QT_QPA_PLATFORM)."""
    field = TextField(xserver.display, getattr(request, "param", "plain"), APP)
    try:
        xdo("windowactivate", "--sync", field.window)
        yield field
    finally:
        field.close()


@pytest.fixture
def recorder(start_recorder: Callable[[], Recording]) -> Recording:
    """`cleartrace record` with every category consented."""
    ct("consent", "give", "--all")
    return start_recorder()


def streams_of(session_id: str) -> list[dict[str, Any]]:
    shown = json.loads(ct("sessions", "show", session_id, "--text", "--json").stdout)
    return [s for s in shown["text"] if s["app"] == APP]


def test_text_typed_with_corrections_is_rebuilt_exactly_as_the_field_shows_it(
    text_field: TextField, recorder: Recording, xdo: Callable[..., str], private_home: Paths
) -> None:
    wait_for(lambda: status(private_home)["application"] == APP, what="the field's focus")

    def typed(text: str) -> None:
        xdo("type", "--delay", "20", text)

    def keys(*names: str) -> None:
        xdo("key", "--delay", "20", *names)

    typed("Thsi")
    keys("BackSpace", "BackSpace")  # a typo fixed at once
    typed("is is a tset")
    keys(*["BackSpace"] * 3)
    typed("est of nothing")
    keys("ctrl+BackSpace")  # a word taken back
    typed("everything, I hope.")
    keys("Return")
    typed("Price: 42 EUR")
    keys("shift+Left", "shift+Left", "shift+Left")  # a selection typed over
    typed("USD")
    keys("Home")
    typed(">> ")
    keys("End")
    typed("!")
    keys("Up", "End")
    typed(" (draft)")
    keys(*["ctrl+Left"] * 5)  # ")", "draft", "(", ".", "hope"
    typed("really ")
    keys("ctrl+End", "Return", "Caps_Lock", "n", "a", "s", "a", "Caps_Lock", "space", "shift+Tab")
    typed("ok")
    shown = text_field.text()
    recorder.stop()

    assert (
        shown == "This is a test of everything, I really hope. (draft)\n>> Price: 42 USD!\nNASA ok"
    )
    (session,) = sessions()
    (stream,) = streams_of(session["id"])
    assert stream["text"] == shown


@pytest.mark.parametrize("text_field", ["line"], indirect=True)
def test_a_single_line_field_is_rebuilt_exactly_too(
    text_field: TextField, recorder: Recording, xdo: Callable[..., str], private_home: Paths
) -> None:
    wait_for(lambda: status(private_home)["application"] == APP, what="the field's focus")
    xdo("type", "--delay", "20", "user: anna.berg@exmaple.org")
    xdo("key", "--delay", "20", *["ctrl+Left"] * 3, "ctrl+Delete")  # the misspelt word
    xdo("type", "--delay", "20", "example")
    xdo("key", "--delay", "20", "Home", "ctrl+Delete", "ctrl+Delete", "shift+Right")
    xdo("type", "--delay", "20", "A")
    xdo("key", "--delay", "20", "End", "ctrl+shift+Left", "ctrl+c", "ctrl+BackSpace")
    xdo("type", "--delay", "20", "com")
    shown = text_field.text()
    recorder.stop()
    assert shown == "Anna.berg@example.com"
    (session,) = sessions()
    (stream,) = streams_of(session["id"])
    assert stream["text"] == shown


# X dead keysyms (X11/keysymdef.h) put on spare keycodes: Xvfb's default map has none.
DEAD_KEYS = {"dead_acute": 0xFE51, "dead_circumflex": 0xFE52, "dead_diaeresis": 0xFE57}


@pytest.fixture
def dead_keys(wm: None, xserver: Any) -> None:
    """Map dead keys before the recorder reads the keyboard map; the window manager's
    connection keeps the server from resetting the map when ours closes."""
    from Xlib.display import Display

    display = Display(xserver.display)
    try:
        first = display.display.info.min_keycode
        count = display.display.info.max_keycode - first + 1
        mapping = display.get_keyboard_mapping(first, count)
        free = [first + i for i, syms in enumerate(mapping) if not any(syms)][1:]
        for code, keysym in zip(free, DEAD_KEYS.values(), strict=False):
            display.change_keyboard_mapping(code, [[keysym] * len(mapping[0])])
        display.sync()
    finally:
        display.close()


def test_dead_keys_compose_as_the_field_composes_them(
    dead_keys: None,
    text_field: TextField,
    recorder: Recording,
    xdo: Callable[..., str],
    private_home: Paths,
) -> None:
    wait_for(lambda: status(private_home)["application"] == APP, what="the field's focus")
    xdo("key", "--delay", "20", "c", "a", "f", "dead_acute", "e", "space")
    xdo("key", "--delay", "20", "dead_circumflex", "space", "dead_diaeresis", "shift+u")
    shown = text_field.text()
    recorder.stop()
    assert shown == "café ^Ü"
    (session,) = sessions()
    (stream,) = streams_of(session["id"])
    assert stream["text"] == shown
