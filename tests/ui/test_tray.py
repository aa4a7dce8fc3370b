"""The tray and its stand-in window over a real Service: icons, tooltip, menu, notifications."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QImage
from PySide6.QtWidgets import QLabel, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from cleartrace.categories import USUAL, Category
from cleartrace.ui import app, icons
from cleartrace.ui.hotkey import PauseHotkey
from cleartrace.ui.runner import Runner
from cleartrace.ui.tray import ACTIONS, Tray
from tests.support.cli import ct

PAUSES = {"pause15", "pause1h", "pause"}
NAMES = {entry[0] for entry in ACTIONS if entry is not None}


class SpyTrayIcon(QSystemTrayIcon):
    """A real tray icon that also keeps what it was asked to pop up."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.messages: list[tuple[str, str]] = []

    def showMessage(self, title: str, message: str, *args: Any) -> None:  # type: ignore[override]  # noqa: N802
        self.messages.append((title, message))
        super().showMessage(title, message, *args)


class SpyTray(Tray):
    tray_icon_class = SpyTrayIcon


@pytest.fixture
def make_tray(qtbot: QtBot) -> Iterator[Callable[..., Tray]]:
    """`make_tray(runner, use_tray=...)`, started; quit at teardown if a test did not."""
    made: list[Tray] = []

    def make(runner: Runner, *, use_tray: bool, cls: type[Tray] = Tray) -> Tray:
        tray = cls(runner, use_tray=use_tray, interval_ms=100)
        made.append(tray)
        tray.start()
        return tray

    yield make
    for tray in made:
        if not tray._quitting:
            with qtbot.waitSignal(tray.finished, timeout=20_000):
                tray.quit()


def same_icon(a: QIcon, b: QIcon) -> bool:
    return a.cacheKey() == b.cacheKey()


def enabled(tray: Tray) -> set[str]:
    return {name for name in NAMES if tray.action(name).isEnabled()}


def wait_state(qtbot: QtBot, tray: Tray, state: str) -> None:
    qtbot.waitUntil(lambda: tray.icon_state == state, timeout=15_000)


# -- icons ----------------------------------------------------------------------------


def _mask(state: str) -> list[bool]:
    image = icons.icon_for(state).pixmap(32, 32).toImage()
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    return [image.pixelColor(x, y).alpha() > 128 for y in range(32) for x in range(32)]


def test_each_state_has_its_svg_and_a_shape_of_its_own(qapp: Any) -> None:
    for state in icons.STATES:
        assert icons.find_file(f"resources/icons/{icons._FILES[state]}") is not None
        assert not icons.icon_for(state).isNull()
    masks = {state: _mask(state) for state in icons.STATES}
    for a, b in itertools.combinations(icons.STATES, 2):
        # Shape, not colour: the opaque pixels alone must differ visibly.
        differing = sum(x != y for x, y in zip(masks[a], masks[b], strict=True))
        assert differing >= 40, (a, b, differing)
    assert same_icon(icons.icon_for("something new"), icons.icon_for("cannot record"))


# -- states ------------------------------------------------------------------------------


def test_first_run_is_off_asks_for_consent_once_and_offers_no_pause(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray]
) -> None:
    asked: list[bool] = []
    tray = Tray(runner, use_tray=True, interval_ms=50)
    tray.consentRequested.connect(lambda: asked.append(True))
    tray.start()
    qtbot.waitUntil(lambda: tray.snapshot is not None)
    qtbot.wait(300)  # several more snapshots: still asked once
    assert asked == [True]
    assert tray.tray_icon is not None
    assert same_icon(tray.tray_icon.icon(), icons.icon_for("off"))
    assert tray.tray_icon.toolTip().startswith("ClearTrace: Off: choose what may be recorded")
    assert enabled(tray) == {"review", "captured", "consent", "settings", "privacy", "history"} | {
        "quit"
    }
    with qtbot.waitSignal(tray.finished, timeout=10_000):
        tray.quit()


def test_cannot_record_shows_the_reason_and_still_offers_withdrawal(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    call(runner, lambda s: s.give([Category.KEYS]))  # this service has no display
    tray = make_tray(runner, use_tray=True)
    wait_state(qtbot, tray, "cannot record")
    assert tray.tray_icon is not None
    assert same_icon(tray.tray_icon.icon(), icons.icon_for("cannot record"))
    assert "Cannot record: no X display: DISPLAY is not set" in tray.tooltip()
    assert "withdraw" in enabled(tray)
    assert not PAUSES & enabled(tray)


@pytest.mark.xserver
def test_recording_pause_resume_and_quit_from_the_tray_menu(
    qtbot: QtBot, live_runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    tray = make_tray(live_runner, use_tray=True)
    call(live_runner, lambda s: s.give(list(USUAL)))
    wait_state(qtbot, tray, "recording")
    assert tray.tray_icon is not None
    assert same_icon(tray.tray_icon.icon(), icons.icon_for("recording"))
    assert tray.tooltip().startswith("ClearTrace: Recording\nToday: ")
    assert enabled(tray) >= PAUSES
    assert "resume" not in enabled(tray)

    tray.action("pause15").trigger()
    wait_state(qtbot, tray, "paused")
    snap = call(live_runner, lambda s: s.snapshot())
    assert (snap.state, snap.hooks) == ("paused", ())
    assert same_icon(tray.tray_icon.icon(), icons.icon_for("paused"))
    # "00:11" today, "6 Dec 00:11" when fifteen minutes from now is tomorrow.
    assert re.match(
        r"ClearTrace: Paused until (\d{1,2} [A-Z][a-z]{2} )?\d\d:\d\d\n", tray.tooltip()
    )
    assert "resume" in enabled(tray)
    assert not PAUSES & enabled(tray)

    tray.action("resume").trigger()
    wait_state(qtbot, tray, "recording")
    assert call(live_runner, lambda s: s.snapshot()).hooks

    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.action("quit").trigger()
    assert not live_runner.service.recording_thread_alive
    assert not tray.tray_icon.isVisible()
    assert not enabled(tray)


@pytest.mark.xserver
def test_the_first_run_dialog_comes_before_any_hook_and_agreeing_starts_them(
    qtbot: QtBot, live_runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    from PySide6.QtWidgets import QCheckBox, QPushButton

    tray = make_tray(live_runner, use_tray=False)
    windows = app.Windows(live_runner, tray, parent=tray)
    qtbot.waitUntil(lambda: "consentRequested" in windows._open)
    dialog = windows._open["consentRequested"]
    assert not live_runner.service.recording_thread_alive  # no recorder, so no hook
    assert call(live_runner, lambda s: s.snapshot()).hooks == ()
    qtbot.waitUntil(lambda: dialog.findChild(QCheckBox, "consent_keys") is not None)
    dialog.findChild(QCheckBox, "consent_keys").click()
    dialog.findChild(QPushButton, "agree").click()
    wait_state(qtbot, tray, "recording")
    assert call(live_runner, lambda s: s.snapshot()).hooks == ("keyboard", "focus")


@pytest.mark.xserver
def test_withdrawing_from_the_menu_removes_every_hook(
    qtbot: QtBot, live_runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    from PySide6.QtWidgets import QPushButton

    tray = make_tray(live_runner, use_tray=False)
    windows = app.Windows(live_runner, tray, parent=tray)
    call(live_runner, lambda s: s.give(list(USUAL)))
    wait_state(qtbot, tray, "recording")
    assert call(live_runner, lambda s: s.snapshot()).hooks
    tray.action("withdraw").trigger()
    qtbot.waitUntil(lambda: "withdrawRequested" in windows._open)
    dialog = windows._open["withdrawRequested"]
    button = dialog.findChild(QPushButton, "withdraw")
    qtbot.waitUntil(button.isEnabled)
    button.click()
    wait_state(qtbot, tray, "off")
    snap = call(live_runner, lambda s: s.snapshot())
    assert (snap.state, snap.hooks, snap.granted) == ("off", (), frozenset())


@pytest.mark.xserver
def test_without_a_tray_a_window_on_top_shows_the_state_and_its_buttons_act(
    qtbot: QtBot, live_runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    tray = make_tray(live_runner, use_tray=False)
    window = tray.window
    assert window is not None
    assert tray.tray_icon is None
    assert window.isVisible()
    assert window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    call(live_runner, lambda s: s.give(list(USUAL)))
    wait_state(qtbot, tray, "recording")
    state = window.findChild(QLabel, "stateText")
    assert state is not None
    assert state.text() == "Recording"
    assert window.primary_button.defaultAction() is tray.action("pause")

    qtbot.mouseClick(window.primary_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, tray, "paused")
    assert state.text() == "Paused until you resume"
    assert window.primary_button.defaultAction() is tray.action("resume")
    menu = window.menu_button.menu()
    resume = menu.findChild(QAction, "resume")
    assert resume is not None
    resume.trigger()
    wait_state(qtbot, tray, "recording")

    window.close()  # never a silent recorder: closing only minimises
    assert window.isVisible()
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.quit()
    assert not window.isVisible()
    assert not live_runner.service.recording_thread_alive


# -- notifications ---------------------------------------------------------------------------


@pytest.mark.xserver
def test_forgetting_and_sessions_awaiting_review_are_announced(
    qtbot: QtBot,
    live_runner: Runner,
    make_tray: Callable[..., Tray],
    call: Callable[..., Any],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    tray = make_tray(live_runner, use_tray=True, cls=SpyTray)
    call(live_runner, lambda s: s.give(list(USUAL)))
    wait_state(qtbot, tray, "recording")
    assert tray.snapshot is not None
    assert tray.snapshot.pending_review == 0
    # A key: a session with nothing typed, clicked or scrolled would not be kept.
    xdo("mousemove", "10", "10", "mousemove", "200", "120", "key", "a")
    qtbot.waitUntil(lambda: tray.action("forget15").isEnabled(), timeout=10_000)
    qtbot.waitUntil(
        lambda: bool(tray.snapshot and tray.snapshot.session_counts.get("keys")), timeout=10_000
    )
    tray.action("forget15").trigger()  # closes the session: it now awaits review
    assert isinstance(tray.tray_icon, SpyTrayIcon)
    messages = tray.tray_icon.messages
    qtbot.waitUntil(lambda: len(messages) >= 2, timeout=10_000)
    titles = [title for title, _ in messages]
    assert titles == ["Forgotten", "Sessions await your review"]
    # What the CLI's `forget` says, in the same words.
    assert re.fullmatch(
        r"Forgot the last 15 minutes: [\d,]+ events removed for good from sessions 1 pending\.",
        messages[0][1],
    )
    assert messages[1][1].startswith(
        "1 session will be approved automatically after 3 days unless you hold them; "
        "nothing leaves this computer until it is enrolled."
    )
    qtbot.wait(300)  # more snapshots, the same count: said once
    assert len(messages) == 2


@pytest.mark.xserver
def test_the_end_of_a_timed_pause_is_announced_in_the_window(
    qtbot: QtBot, live_runner: Runner, make_tray: Callable[..., Tray], call: Callable[..., Any]
) -> None:
    tray = make_tray(live_runner, use_tray=False)
    said: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, message: said.append((title, message)))
    call(live_runner, lambda s: s.give([Category.CLICKS]))
    wait_state(qtbot, tray, "recording")
    call(live_runner, lambda s: s.pause(0.5))
    wait_state(qtbot, tray, "paused")
    wait_state(qtbot, tray, "recording")
    qtbot.waitUntil(lambda: "Recording again" in [t for t, _ in said], timeout=5_000)
    assert tray.window is not None
    message = tray.window.findChild(QLabel, "messageText")
    assert message is not None
    assert message.isVisible()
    assert "The pause you set has ended" in message.text()


# -- the hotkey -------------------------------------------------------------------------------


def install(qtbot: QtBot, hotkey: PauseHotkey, combination: str | None = None) -> None:
    """Start `hotkey` and wait until it is ready; a failure fails with its reason."""
    outcome: list[str | None] = []

    def ready() -> None:
        outcome.append(None)

    hotkey.ready.connect(ready)
    hotkey.failed.connect(outcome.append)
    hotkey.start(combination)
    qtbot.waitUntil(lambda: bool(outcome), timeout=20_000)
    hotkey.ready.disconnect(ready)
    hotkey.failed.disconnect(outcome.append)
    assert outcome == [None], outcome


@pytest.mark.xserver
def test_the_hotkey_pauses_and_resumes_even_while_paused(
    qtbot: QtBot,
    live_runner: Runner,
    make_tray: Callable[..., Tray],
    call: Callable[..., Any],
    xdo: Callable[..., str],
) -> None:
    tray = make_tray(live_runner, use_tray=True)
    hotkey = PauseHotkey()
    hotkey.activated.connect(tray.toggle_pause)
    try:
        install(qtbot, hotkey)
        call(live_runner, lambda s: s.give([Category.KEYS]))
        wait_state(qtbot, tray, "recording")
        xdo("key", "ctrl+alt+shift+p")
        wait_state(qtbot, tray, "paused")
        assert call(live_runner, lambda s: s.snapshot()).hooks == ()
        xdo("key", "ctrl+alt+shift+p")  # no recorder hook now; the hotkey's own listener
        wait_state(qtbot, tray, "recording")
    finally:
        hotkey.stop()


@pytest.mark.xserver
def test_a_new_hotkey_replaces_the_old_one(qtbot: QtBot, xdo: Callable[..., str]) -> None:
    hotkey = PauseHotkey()
    pressed: list[bool] = []
    hotkey.activated.connect(lambda: pressed.append(True))
    try:
        install(qtbot, hotkey)
        install(qtbot, hotkey, "<ctrl>+<alt>+k")  # as Settings saves a new one
        # pynput says "ready" just before its RECORD context is enabled: press until heard.
        for _ in range(50):
            xdo("key", "ctrl+alt+k")
            qtbot.wait(100)
            if pressed:
                break
        heard = len(pressed)
        assert heard >= 1
        xdo("key", "ctrl+alt+shift+p")  # the old one is gone
        install(qtbot, hotkey, "")  # none
        xdo("key", "ctrl+alt+k")
        qtbot.wait(200)
        assert len(pressed) == heard
    finally:
        hotkey.stop()


def test_a_hotkey_that_cannot_be_installed_is_shown_not_fatal(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray]
) -> None:
    tray = make_tray(runner, use_tray=False)
    hotkey = PauseHotkey(env={})
    hotkey.failed.connect(tray.set_hotkey_problem)
    with qtbot.waitSignal(hotkey.failed, timeout=10_000) as failed:
        hotkey.start()
    assert "DISPLAY is not set" in failed.args[0]
    qtbot.waitUntil(lambda: "Pause hotkey unavailable: no X display" in tray.tooltip())
    hotkey.stop()


# -- windows owned by other modules ---------------------------------------------------------


def test_a_window_opens_once_and_first_run_asks_for_consent(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray]
) -> None:
    tray = make_tray(runner, use_tray=False)
    windows = app.Windows(runner, tray, parent=tray)
    # A first run: the first snapshot says consent was never asked for.
    qtbot.waitUntil(lambda: "consentRequested" in windows._open)
    shown = windows._open["consentRequested"]
    assert shown.isVisible()
    tray.action("consent").trigger()
    assert windows._open["consentRequested"] is shown
    shown.close()
    tray.action("history").trigger()
    qtbot.waitUntil(lambda: "historyRequested" in windows._open)
    assert windows._open["historyRequested"].isVisible()


def test_a_hotkey_saved_in_settings_reaches_the_app(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray]
) -> None:
    tray = make_tray(runner, use_tray=False)
    changed: list[str] = []
    windows = app.Windows(runner, tray, on_hotkey_changed=changed.append, parent=tray)
    settings = windows.open("settingsRequested")
    assert settings is not None
    settings.hotkey_changed.emit("Ctrl+Alt+K")  # type: ignore[attr-defined]
    assert changed == ["Ctrl+Alt+K"]
    settings.close()


# -- privacy policy and the command ------------------------------------------------------------


def test_the_privacy_policy_opens_read_only(
    qtbot: QtBot, runner: Runner, make_tray: Callable[..., Tray]
) -> None:
    tray = make_tray(runner, use_tray=False)
    tray.action("privacy").trigger()
    qtbot.waitUntil(lambda: tray._privacy is not None and tray._privacy.isVisible())
    assert tray._privacy is not None
    assert tray._privacy.isReadOnly()
    assert "ClearTrace privacy notice" in tray._privacy.toPlainText()


def test_cleartrace_tray_without_a_display_says_why_in_one_line_and_exits_2() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    }
    done = ct("tray", env=env, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "no display (DISPLAY is not set)" in done.stderr
