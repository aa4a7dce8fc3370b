"""The focus watcher on a real X server: which application the keys really went to.

Each test sends a key through XTEST, learns from the window (or screen
locker) that received it where it went and at what server time, and checks
what the watcher's timeline makes of that time: a key that went to an
excluded application, or to a place the watcher cannot name, is excluded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cleartrace.capture._x11_focus import FocusWatcher
from cleartrace.capture.timeline import (
    LAG_MS,
    UNKNOWN,
    FocusedWindow,
    FocusState,
    FocusTimeline,
    TimelineView,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

EXCLUDED = "KeePassXC"
#: An exclusion by WM_CLASS instance (a terminal started as `urxvt -name vault`).
EXCLUDED_INSTANCE = "vault-term"


def judge(window: FocusedWindow | None) -> FocusState:
    """As the recorder judges: excluded when any class or instance in the
    window's names is (the recorder asks `Exclusions.is_excluded`)."""
    if window is None:
        return UNKNOWN
    excluded = any(
        cls == EXCLUDED or instance == EXCLUDED_INSTANCE for cls, instance in window.names
    )
    return FocusState(excluded, (window.app, window.title))


@pytest.fixture
def watched(xserver: Any) -> Iterator[Callable[[], tuple[FocusTimeline, FocusWatcher]]]:
    """`watched()` starts a focus watcher on a fresh timeline; stopped at teardown."""
    started: list[FocusWatcher] = []

    def start() -> tuple[FocusTimeline, FocusWatcher]:
        timeline = FocusTimeline(judge)
        watcher = FocusWatcher(timeline, titles=False)
        watcher.start()
        assert watcher.ready.wait(2)
        started.append(watcher)
        return timeline, watcher

    yield start
    for watcher in started:
        watcher.stop(final=True)


def settle(timeline: FocusTimeline) -> None:
    """Two fresh watermarks: a focus the watcher only found out about while
    handling the first (a window it was not watching yet) is confirmed by the
    second, as it would be long before a person types."""
    for _ in range(2):
        before = timeline.view().watermark or 0
        deadline = time.monotonic() + 5
        while (timeline.view().watermark or 0) <= before:
            assert time.monotonic() < deadline, "no watermark came"
            timeline.request()
            timeline.wait(lambda v, before=before: (v.watermark or 0) > before, 0.2)


def send_key(display_name: str, timeline: FocusTimeline | None = None) -> None:
    """One key press and release, through XTEST, from a connection of its own,
    once `timeline` (if given) has settled."""
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    if timeline is not None:
        settle(timeline)
    display = Display(display_name)
    try:
        code = display.keysym_to_keycode(XK.string_to_keysym("a"))
        xtest.fake_input(display, X.KeyPress, code)
        xtest.fake_input(display, X.KeyRelease, code)
        display.sync()
    finally:
        display.close()


def received(keys: Path) -> int:
    """The server time of the one key the window wrote to `keys`."""
    wait_for(
        lambda: keys.exists() and bool(keys.read_text().strip()),
        timeout=5,
        what="the window to receive the key",
    )
    (stamp,) = keys.read_text().split()
    return int(stamp)


def decided(timeline: FocusTimeline, x: int) -> TimelineView:
    """The timeline once a watermark has passed server time `x` by `LAG_MS`."""
    views: list[TimelineView] = []

    def passed() -> bool:
        timeline.request()
        views.append(timeline.wait(lambda v: (v.watermark or 0) > x + LAG_MS, 0.2))
        return (views[-1].watermark or 0) > x + LAG_MS

    wait_for(passed, timeout=5, what="a watermark past the key")
    return views[-1]


def excluded_at(timeline: FocusTimeline, keys: Path) -> bool:
    x = timeline.unwrap(received(keys))
    return decided(timeline, x).state_at(x)[0]


def test_keys_that_follow_the_pointer_with_the_focus_on_pointer_root_are_unknown(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    """With the focus on PointerRoot the keys go to the window under the
    pointer, which moves with no focus event: nobody can tell where they went."""
    from Xlib import X
    from Xlib.display import Display
    from Xlib.ext import xtest

    vault_keys = tmp_path / "vault"
    app_window("Gedit", "notes", focus=False)
    vault = app_window(EXCLUDED, "vault", extra=("--keys-to", str(vault_keys)), focus=False)
    display = Display(xserver.display)
    try:
        display.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime)
        xtest.fake_input(display, X.MotionNotify, x=1000, y=700)  # over no window
        display.sync()
        timeline, _ = watched()
        geometry = display.create_resource_object("window", int(vault, 16)).get_geometry()
        xtest.fake_input(display, X.MotionNotify, x=geometry.x + 10, y=geometry.y + 10)
        display.sync()
    finally:
        display.close()
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, vault_keys)


def test_keys_sent_while_the_focus_is_on_the_root_window_are_unknown(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    from Xlib import X
    from Xlib.display import Display

    timeline, _ = watched()
    display = Display(xserver.display)
    try:
        root = display.screen().root
        root.change_attributes(event_mask=X.KeyPressMask)
        root.set_input_focus(X.RevertToParent, X.CurrentTime)
        display.sync()
        send_key(xserver.display)
        while True:
            event = display.next_event()
            if event.type == X.KeyPress:
                break
    finally:
        display.close()
    x = timeline.unwrap(event.time)
    assert decided(timeline, x).state_at(x)[0]


def test_keys_typed_while_a_screen_locker_grabs_the_keyboard_on_the_root_are_unknown(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    """i3lock and slock grab the keyboard on the root window: the focus events
    name the root, not the locker's window."""
    editor_keys, locker_keys = tmp_path / "editor", tmp_path / "locker"
    app_window("Gedit", "notes", extra=("--keys-to", str(editor_keys)))
    timeline, _ = watched()
    extra = ("--grab-root", "--keys-to", str(locker_keys))
    app_window("I3lock", "lock", extra=extra, focus=False)
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, locker_keys)
    assert not editor_keys.exists()


def test_a_window_inside_a_frame_with_a_class_of_its_own_is_judged_by_its_own_class(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    """A reparenting window manager's frame may carry a WM_CLASS of its own;
    the application is the client window inside it, marked by WM_STATE."""
    keys = tmp_path / "vault"
    timeline, _ = watched()
    app_window(EXCLUDED, "vault", extra=("--frame", "Framer", "--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, keys)


def test_a_popup_of_an_excluded_window_is_excluded(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    keys = tmp_path / "popup"
    timeline, _ = watched()
    vault = app_window(EXCLUDED, "vault")
    app_window("Popup", "unlock", extra=("--transient-for", vault, "--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, keys)


def test_a_dialog_of_an_excluded_application_parented_to_another_window_is_excluded(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    """pinentry given a caller's window, a password manager's dialog over the
    browser: the owner is an ordinary application, the dialog is not."""
    keys = tmp_path / "dialog"
    timeline, _ = watched()
    browser = app_window("Firefox", "shop")
    app_window(EXCLUDED, "unlock", extra=("--transient-for", browser, "--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, keys)


def test_a_window_excluded_by_its_instance_name_is_excluded(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    keys = tmp_path / "terminal"
    timeline, _ = watched()
    app_window("URxvt", "shell", EXCLUDED_INSTANCE, extra=("--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, keys)


def test_a_focused_window_without_a_class_is_unknown(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    keys = tmp_path / "nameless"
    timeline, _ = watched()
    app_window(None, "nameless", extra=("--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert excluded_at(timeline, keys)


def test_an_ordinary_window_is_not_excluded(
    xserver: Any,
    app_window: Callable[..., str],
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    tmp_path: Path,
) -> None:
    """The other side of the rules above: the same setup with a plain
    application focused keeps its keys."""
    keys = tmp_path / "editor"
    timeline, _ = watched()
    app_window("Gedit", "notes", extra=("--frame", "Framer", "--keys-to", str(keys)))
    send_key(xserver.display, timeline)
    assert not excluded_at(timeline, keys)


def test_a_foreign_property_change_on_the_probe_window_does_not_stop_the_watcher(
    xserver: Any, watched: Callable[[], tuple[FocusTimeline, FocusWatcher]]
) -> None:
    from Xlib import X, Xatom
    from Xlib.display import Display

    timeline, watcher = watched()
    display = Display(xserver.display)
    try:
        probe = display.create_resource_object("window", watcher._probe_window.id)
        probe.change_property(display.intern_atom("WM_NAME"), Xatom.STRING, 8, b"x")
        probe.change_property(watcher._probe_atom, watcher._probe_atom, 8, b"", X.PropModeAppend)
        display.sync()
    finally:
        display.close()
    before = timeline.view().watermark or 0
    decided(timeline, before + 1)
    assert watcher.is_alive()


def test_an_idle_watcher_still_confirms_watermarks_now_and_then(
    xserver: Any,
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Server times wrap after 49.7 days and are unwrapped against the latest
    one seen: a watcher that saw nothing for weeks would unwrap the next one
    backwards. It confirms a watermark after every quiet stretch instead."""
    from cleartrace.capture import _x11_focus

    monkeypatch.setattr(_x11_focus, "_IDLE_PROBE_S", 0.2)
    timeline, _ = watched()
    first = timeline.view().watermark
    assert first is not None
    view = timeline.wait(lambda v: v.watermark != first, 5)  # nobody asks for one
    assert view.watermark is not None
    assert view.watermark > first


def test_windows_that_vanish_before_they_are_watched_print_no_x_errors(
    xserver: Any,
    watched: Callable[[], tuple[FocusTimeline, FocusWatcher]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    from Xlib import X
    from Xlib.display import Display

    timeline, watcher = watched()
    display = Display(xserver.display)
    try:
        root = display.screen().root
        for _ in range(20):  # created and destroyed before the watcher hears of them
            root.create_window(0, 0, 10, 10, 0, 0, X.InputOnly, X.CopyFromParent).destroy()
        display.sync()
    finally:
        display.close()
    decided(timeline, (timeline.view().watermark or 0) + 1)
    assert watcher.is_alive()
    assert "BadWindow" not in capfd.readouterr().err


def test_a_watcher_that_ends_after_its_successor_started_leaves_it_attached() -> None:
    """A watcher that did not end within its stop timeout must not, when it
    finally does, detach the one that replaced it."""
    timeline = FocusTimeline(judge)
    woken: list[str] = []

    def old() -> None:
        woken.append("old")

    def new() -> None:
        woken.append("new")

    timeline.attach(old)
    timeline.attach(new)
    timeline.detach(old, final=False)
    timeline.request()
    assert woken == ["new"]
