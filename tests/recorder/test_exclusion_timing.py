"""Exclusion is decided by when an event happened, not by when ClearTrace learnt of it.

Keys typed into an excluded window in the same burst of X requests as the
focus change that made it excluded (before any thread of the recorder could
notice the change) must never be stored, whether a window manager publishes
the focus or not; keys typed just before are kept, under the right
application, and an excluded interval with no content marks the gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cleartrace.events import Event, Kind
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

VAULT_TYPING = "hunter2"


def _events(paths: Paths, session_id: str) -> list[Event]:
    home = Home.open(paths, create=False)
    try:
        return home.store.read_events(session_id)
    finally:
        home.close()


def _text_rows(session_id: str) -> list[tuple[str | None, str]]:
    import json

    shown = json.loads(ct("sessions", "show", session_id, "--text", "--json").stdout)
    return [(s["app"], s["text"]) for s in shown["text"] if s["text"]]


def _check_session(paths: Paths, typed_in_vault: int) -> None:
    """'visible' and 'again' kept under Gedit; nothing typed in the vault; one empty marker pair.

    `typed_in_vault`: the key presses the vault's window itself received, so
    that the test proves the keys went there (and were not lost on the way).
    """
    (session,) = sessions()
    assert _text_rows(session["id"]) == [("Gedit", "visible"), ("Gedit", "again")]
    assert "KeePassXC" not in session["applications"]
    events = _events(paths, session["id"])
    starts = [i for i, e in enumerate(events) if e.kind == Kind.EXCLUDED_START]
    ends = [i for i, e in enumerate(events) if e.kind == Kind.EXCLUDED_END]
    assert len(starts) == 1
    assert len(ends) == 1
    assert starts[0] < ends[0]
    for marker in (events[starts[0]], events[ends[0]]):
        assert (marker.app, marker.title, marker.a, marker.b, marker.c, marker.d) == (
            None, None, 0, 0, 0, 0,
        )  # fmt: skip
    inside = events[starts[0] + 1 : ends[0]]
    assert [e for e in inside if e.category is not None] == []
    keys = [e for e in events if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP)]
    assert len(keys) == 2 * len("visibleagain")  # not one of the vault's keys
    assert typed_in_vault == len(VAULT_TYPING)


def _received(keys: Path) -> int:
    """How many key presses the window that writes to `keys` received (all of
    them were sent before the recorder stopped)."""
    return len(keys.read_text().split()) if keys.exists() else 0


def _pressed_in(display: Any, window: Any) -> int:
    """Key presses `window` (created on `display` selecting them) received."""
    from Xlib import X

    display.sync()
    n = 0
    while display.pending_events():
        event = display.next_event()
        n += event.type == X.KeyPress and event.window == window
    return n


def _windows(
    xserver: Any, app_window: Callable[..., str], xdo: Callable[..., str], keys: Path
) -> tuple[str, str]:
    vault = app_window("KeePassXC", "Passwords.kdbx", extra=("--keys-to", str(keys)))
    editor = app_window("Gedit", "notes")
    xdo("windowactivate" if xserver.wm else "windowfocus", "--sync", editor)
    return editor, vault


def _type_before(rec: Recording, paths: Paths, xdo: Callable[..., str]) -> None:
    wait_for(lambda: status(paths)["application"] == "Gedit", what="editor focus")
    xdo("type", "--delay", "15", "visible")
    # Let the writer store it: what was typed before the switch must survive
    # whatever happens to the burst that follows.
    rec.wait_stored("keys", 14, what="'visible' stored")


def _type_after(rec: Recording, paths: Paths, xdo: Callable[..., str]) -> None:
    wait_for(lambda: status(paths)["application"] == "Gedit", what="back in the editor")
    # Input pacing, not a wait: a person pauses after switching back; keys
    # typed within LAG_MS of a focus change may have gone to either window.
    time.sleep(0.3)
    xdo("type", "--delay", "15", "again")
    rec.wait_stored("keys", 14 + 10, what="'again' stored")
    rec.stop()


@pytest.mark.parametrize("with_wm", [False, True], ids=["no-wm", "wm"])
def test_keys_typed_in_the_burst_that_focuses_an_excluded_window_are_not_stored(
    request: pytest.FixtureRequest,
    with_wm: bool,
    start_recorder: Callable[[], Recording],
    xserver: Any,
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    if with_wm:
        request.getfixturevalue("wm")
    ct("consent", "give", "--all")
    editor, vault = _windows(xserver, app_window, xdo, tmp_path / "vault")
    rec = start_recorder()
    _type_before(rec, private_home, xdo)
    focus = "windowactivate" if with_wm else "windowfocus"
    # One xdotool process: focus the vault and type at once ('type' takes the
    # rest of the command line, so the way back is a second one).
    xdo(focus, "--sync", vault, "type", "--delay", "1", VAULT_TYPING)
    xdo(focus, "--sync", editor)
    _type_after(rec, private_home, xdo)
    _check_session(private_home, _received(tmp_path / "vault"))


@pytest.mark.parametrize("with_wm", [False, True], ids=["no-wm", "wm"])
def test_xtest_keys_sent_back_to_back_with_the_focus_change_are_not_stored(
    request: pytest.FixtureRequest,
    with_wm: bool,
    start_recorder: Callable[[], Recording],
    xserver: Any,
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    if with_wm:
        request.getfixturevalue("wm")
    ct("consent", "give", "--all")
    editor, vault = _windows(xserver, app_window, xdo, tmp_path / "vault")
    rec = start_recorder()
    _type_before(rec, private_home, xdo)
    display = Display(xserver.display)
    try:
        ids = {w: display.create_resource_object("window", int(w, 16)) for w in (editor, vault)}
        # Requests on one connection, flushed once: the server focuses the vault
        # and handles every key before any other client hears of the change.
        ids[vault].set_input_focus(X.RevertToParent, X.CurrentTime)
        for char in VAULT_TYPING:
            code = display.keysym_to_keycode(XK.string_to_keysym(char))
            xtest.fake_input(display, X.KeyPress, code)
            xtest.fake_input(display, X.KeyRelease, code)
        ids[editor].set_input_focus(X.RevertToParent, X.CurrentTime)
        display.sync()
    finally:
        display.close()
    _type_after(rec, private_home, xdo)
    _check_session(private_home, _received(tmp_path / "vault"))


def test_keys_typed_just_before_stopping_are_kept(
    start_recorder: Callable[[], Recording],
    xserver: Any,
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
) -> None:
    ct("consent", "give", "--category", "keys")
    app_window("Gedit", "notes")
    rec = start_recorder()
    xdo("type", "--delay", "5", "last words")
    rec.stop()  # at once: whatever is still held is decided and written
    (session,) = sessions()
    keys = session["counts"]["keys"]
    assert keys == 2 * len("last words")


def test_a_new_excluded_window_focused_in_the_burst_that_creates_it_records_nothing(
    start_recorder: Callable[[], Recording],
    xserver: Any,
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
) -> None:
    """A prompt that maps, takes the focus and is typed into before the focus
    watcher has even heard of the window (so before it could watch it)."""
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    ct("consent", "give", "--all")
    editor = app_window("Gedit", "notes")
    rec = start_recorder()
    _type_before(rec, private_home, xdo)
    display = Display(xserver.display)
    try:
        screen = display.screen()
        prompt = screen.root.create_window(
            0, 0, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            event_mask=X.KeyPressMask,
        )  # fmt: skip
        prompt.set_wm_class("pinentry", "KeePassXC")
        prompt.map()
        prompt.set_input_focus(X.RevertToParent, X.CurrentTime)
        for char in VAULT_TYPING:
            code = display.keysym_to_keycode(XK.string_to_keysym(char))
            xtest.fake_input(display, X.KeyPress, code)
            xtest.fake_input(display, X.KeyRelease, code)
        display.create_resource_object("window", int(editor, 16)).set_input_focus(
            X.RevertToParent, X.CurrentTime
        )
        display.sync()
        _type_after(rec, private_home, xdo)
        typed_in_vault = _pressed_in(display, prompt)
    finally:
        display.close()
    _check_session(private_home, typed_in_vault)


def test_keys_typed_while_a_new_excluded_window_grabs_the_keyboard_are_not_stored(
    start_recorder: Callable[[], Recording],
    xserver: Any,
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
) -> None:
    """A PIN prompt grabs the keyboard without taking the focus: the keys go to
    it although the focus stays in the editor."""
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    ct("consent", "give", "--all")
    app_window("Gedit", "notes")
    rec = start_recorder()
    _type_before(rec, private_home, xdo)
    display = Display(xserver.display)
    try:
        screen = display.screen()
        prompt = screen.root.create_window(
            0, 0, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent
        )
        prompt.set_wm_class("pinentry", "KeePassXC")
        prompt.map()
        grabbed = prompt.grab_keyboard(False, X.GrabModeAsync, X.GrabModeAsync, X.CurrentTime)
        assert grabbed == X.GrabSuccess
        for n, char in enumerate(VAULT_TYPING):
            if n == 4:  # the rest well after the recorder has looked at the focus again
                display.sync()
                time.sleep(0.6)
            code = display.keysym_to_keycode(XK.string_to_keysym(char))
            xtest.fake_input(display, X.KeyPress, code)
            xtest.fake_input(display, X.KeyRelease, code)
        display.sync()
        # The scenario's timing, not a wait for events: the grab lasts while
        # the recorder looks at the focus again, as a prompt open for a while would.
        time.sleep(0.6)
        typed_in_vault = _pressed_in(display, prompt)  # a grab reports them to its window
        display.ungrab_keyboard(X.CurrentTime)
        display.sync()
        time.sleep(0.3)  # let the prompt's grab end before the editor is typed in again
        _type_after(rec, private_home, xdo)
    finally:
        display.close()
    _check_session(private_home, typed_in_vault)


def test_a_focus_watcher_that_dies_is_started_again_and_keys_are_stored_again(
    start_recorder: Callable[[], Recording],
    xserver: Any,
    typing_window: str,
    xdo: Callable[..., str],
    private_home: Paths,
) -> None:
    """The X server closes the focus watcher's connection (XKillClient on its
    probe window): without a watcher no key could ever be decided."""
    from Xlib.display import Display

    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "15", "one")
    rec.wait_stored("keys", 6, what="'one' stored")
    display = Display(xserver.display)
    try:
        probe = display.intern_atom("_CLEARTRACE_PROBE")
        (window,) = [
            w for w in display.screen().root.query_tree().children if probe in w.list_properties()
        ]
        window.kill_client()
        display.sync()
    finally:
        display.close()
    # The scenario's timing: no count or status tells that the watcher is back
    # (the recorder looks at its hooks every 0.2 s); the keys below prove it.
    time.sleep(1.0)
    xdo("type", "--delay", "15", "two")
    rec.wait_stored("keys", 12, what="'two' stored")
    rec.stop()
    (session,) = sessions()
    assert "two" in "".join(text for _, text in _text_rows(session["id"]))
