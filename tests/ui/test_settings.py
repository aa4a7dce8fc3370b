"""Settings over a real service: exclusions are ledgered, the hotkey is a private file."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QKeySequenceEdit,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QWidget,
)
from pytestqt.qtbot import QtBot

from cleartrace.consent.exclusions import PersonalExclusions
from cleartrace.consent.signed_policy import install_policy
from cleartrace.errors import UsageError
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import init_policy
from cleartrace.paths import Paths
from cleartrace.preferences import (
    DEFAULT_PAUSE_HOTKEY,
    load_pause_hotkey,
    min_inputs,
    pynput_hotkey,
    save_pause_hotkey,
    settings_file,
)
from cleartrace.service import Service
from cleartrace.ui.hotkey import DEFAULT_HOTKEY
from cleartrace.ui.runner import Runner
from cleartrace.ui.settings import SettingsWindow
from tests.support.notice import EXAMPLE_NOTICE

W = TypeVar("W", bound=QWidget)


@pytest.fixture
def settings(qtbot: QtBot, runner: Runner) -> SettingsWindow:
    window = SettingsWindow(runner)
    qtbot.addWidget(window)
    return window


def child(window: QWidget, cls: type[W], name: str) -> W:
    found = window.findChild(cls, name)
    assert found is not None, name
    return found


def shown(window: SettingsWindow, settle: Callable[[], None]) -> SettingsWindow:
    window.show()
    settle()
    return window


def entries(window: SettingsWindow) -> list[str]:
    items = child(window, QListWidget, "exclusions")
    return [items.item(i).text() for i in range(items.count())]


def select(qtbot: QtBot, window: SettingsWindow, text: str) -> None:
    items = child(window, QListWidget, "exclusions")
    (item,) = items.findItems(text, Qt.MatchFlag.MatchExactly)
    items.scrollToItem(item)
    qtbot.mouseClick(
        items.viewport(), Qt.MouseButton.LeftButton, pos=items.visualItemRect(item).center()
    )
    assert item.isSelected()


def click(qtbot: QtBot, window: SettingsWindow, name: str) -> None:
    qtbot.mouseClick(child(window, QPushButton, name), Qt.MouseButton.LeftButton)


def exclusion_records(service: Service) -> list[tuple[str, str]]:
    """(kind, application) of each exclusion record; the ledger has only the
    application's tag, which the device's exclusions key turns back into a name."""
    home = service.home()
    personal = PersonalExclusions.open(home.ledger, home.keys.master)
    names = {personal.tag(app): app for app in ("firefox", "gedit", "keepassxc")}
    return [
        (r["kind"], names[r["app_tag"]])
        for r in service.ledger().records
        if r["kind"].startswith("app.")
    ]


def test_shows_exclusions_hold_period_and_where_data_lives(
    settings: SettingsWindow, private_home: Paths, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    # No organisation's policy is installed: the defaults are ClearTrace's own.
    assert "keepassxc (built into ClearTrace)" in entries(settings)
    assert not [e for e in entries(settings) if "organisation" in e]
    hold = child(settings, QSpinBox, "hold_days")
    assert (hold.value(), hold.isReadOnly()) == (3, False)
    assert (hold.minimum(), hold.maximum()) == (0, 14)  # the default policy's bounds
    assert "You may choose from 0 to 14 days" in child(settings, QLabel, "hold_note").text()
    assert child(settings, QLabel, "home").text() == str(private_home.home)
    assert "key files readable only by you" in child(settings, QLabel, "key_storage").text()
    # No display for the tests' service: typing the class still works.
    note = child(settings, QLabel, "windows_note").text()
    assert "cannot be listed" in note
    assert "Type the application's class" in note


def test_add_and_remove_a_personal_exclusion_are_ledgered(
    qtbot: QtBot, settings: SettingsWindow, service: Service, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    add = child(settings, QPushButton, "add_exclusion")
    assert not add.isEnabled()  # nothing typed yet
    qtbot.keyClicks(child(settings, QComboBox, "add_app"), "Firefox")
    click(qtbot, settings, "add_exclusion")
    settle()
    assert exclusion_records(service) == [("app.excluded", "firefox")]
    assert entries(settings)[0] == "firefox (yours)"
    assert child(settings, QComboBox, "add_app").currentText() == ""

    remove = child(settings, QPushButton, "remove_exclusion")
    select(qtbot, settings, "keepassxc (built into ClearTrace)")
    assert not remove.isEnabled()  # the policy's own cannot be removed here
    select(qtbot, settings, "firefox (yours)")
    assert remove.isEnabled()
    click(qtbot, settings, "remove_exclusion")
    settle()
    assert exclusion_records(service) == [
        ("app.excluded", "firefox"),
        ("app.included", "firefox"),
    ]
    assert "firefox (yours)" not in entries(settings)
    assert service.exclusions()[-1][1] == "default"


def test_an_exclusion_the_policy_has_shows_why_and_writes_nothing(
    qtbot: QtBot, settings: SettingsWindow, service: Service, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    qtbot.keyClicks(child(settings, QComboBox, "add_app"), "KeePassXC")
    click(qtbot, settings, "add_exclusion")
    settle()
    error = child(settings, QLabel, "error")
    assert error.isVisibleTo(settings)
    assert "already excluded by the policy" in error.text()
    assert exclusion_records(service) == []


def test_open_windows_are_offered_unless_already_excluded(
    qtbot: QtBot,
    settings: SettingsWindow,
    service: Service,
    settle: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "open_window_classes", lambda: ["firefox", "gedit", "keepassxc"])
    shown(settings, settle)
    combo = child(settings, QComboBox, "add_app")
    assert [combo.itemText(i) for i in range(combo.count())] == ["firefox", "gedit"]
    combo.setCurrentIndex(1)  # what picking "gedit" from the list does
    click(qtbot, settings, "add_exclusion")
    settle()
    assert exclusion_records(service) == [("app.excluded", "gedit")]
    assert [combo.itemText(i) for i in range(combo.count())] == ["firefox"]


def test_the_pause_hotkey_is_saved_privately_and_announced(
    qtbot: QtBot, settings: SettingsWindow, private_home: Paths, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    edit = child(settings, QKeySequenceEdit, "pause_hotkey")
    edit.setFocus()
    modifiers = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
    with qtbot.waitSignal(settings.hotkey_changed, timeout=10_000) as changed:
        qtbot.keyClick(edit, Qt.Key.Key_P, modifiers)  # saved when editing finishes
    assert changed.args == ["Ctrl+Alt+P"]
    assert load_pause_hotkey(private_home) == "Ctrl+Alt+P"
    assert stat.S_IMODE(os.stat(settings_file(private_home)).st_mode) == 0o600
    with qtbot.waitSignal(settings.hotkey_changed, timeout=10_000) as changed:
        click(qtbot, settings, "clear_hotkey")
    assert changed.args == [""]
    settle()
    assert load_pause_hotkey(private_home) == ""
    assert edit.keySequence().isEmpty()


def test_a_saved_hotkey_is_shown_when_settings_open(
    settings: SettingsWindow, private_home: Paths, settle: Callable[[], None]
) -> None:
    save_pause_hotkey(private_home, "Ctrl+Shift+F12")
    shown(settings, settle)
    edit = child(settings, QKeySequenceEdit, "pause_hotkey")
    assert edit.keySequence().toString() == "Ctrl+Shift+F12"


def test_a_bare_key_is_refused_as_hotkey_and_nothing_is_saved(
    qtbot: QtBot, settings: SettingsWindow, private_home: Paths, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    edit = child(settings, QKeySequenceEdit, "pause_hotkey")
    assert edit.keySequence().toString() == DEFAULT_PAUSE_HOTKEY  # nothing saved yet
    edit.setFocus()
    error = child(settings, QLabel, "error")
    qtbot.keyClick(edit, Qt.Key.Key_P)  # "p" alone: it would pause on every typed p
    qtbot.waitUntil(error.isVisible, timeout=10_000)
    assert "Ctrl, Alt or the Windows key" in error.text()
    assert edit.keySequence().toString() == DEFAULT_PAUSE_HOTKEY
    assert not settings_file(private_home).exists()


def test_an_unreadable_settings_file_means_the_default_hotkey(private_home: Paths) -> None:
    assert load_pause_hotkey(private_home) == DEFAULT_PAUSE_HOTKEY
    private_home.home.mkdir(parents=True, exist_ok=True)
    settings_file(private_home).write_text("{not json")
    assert load_pause_hotkey(private_home) == DEFAULT_PAUSE_HOTKEY
    save_pause_hotkey(private_home, "Ctrl+Alt+P")  # a fresh file replaces it
    assert load_pause_hotkey(private_home) == "Ctrl+Alt+P"


@pytest.mark.parametrize(
    ("qt", "pynput"),
    [
        ("", ""),
        ("Ctrl+Alt+P", "<ctrl>+<alt>+p"),
        ("Meta+F12", "<cmd>+<f12>"),
        ("Ctrl+Shift+PgDown", "<ctrl>+<shift>+<page_down>"),
        ("Alt+7", "<alt>+7"),
    ],
)
def test_hotkeys_in_the_listener_notation(qt: str, pynput: str) -> None:
    assert pynput_hotkey(qt) == pynput


@pytest.mark.parametrize("qt", ["P", "Shift+P", "Ctrl+Alt++", "Ctrl+P, Ctrl+Q", "Ctrl+Foo"])
def test_unusable_hotkeys_are_refused(qt: str) -> None:
    with pytest.raises(UsageError, match="Ctrl, Alt or the Windows key"):
        pynput_hotkey(qt)


def test_the_default_is_the_tray_listener_default() -> None:
    assert pynput_hotkey(DEFAULT_PAUSE_HOTKEY) == DEFAULT_HOTKEY


def test_the_hold_period_is_chosen_within_the_bounds_and_kept(
    qtbot: QtBot, settings: SettingsWindow, service: Service, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    hold = child(settings, QSpinBox, "hold_days")
    qtbot.keyClick(hold, Qt.Key.Key_Up)
    qtbot.keyClick(hold, Qt.Key.Key_Up)
    settle()
    assert hold.value() == 5
    assert service.hold_days() == 5
    hold.setValue(99)  # clamped to the policy's maximum by the spin box
    settle()
    assert service.hold_days() == 14
    assert service.snapshot().hold_days == 14


def test_a_policy_without_room_to_choose_shows_its_period_read_only(
    settings: SettingsWindow, private_home: Paths, settle: Callable[[], None], tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    generate(keys)
    signed = init_policy(
        keys,
        "https://collector.example",
        tmp_path / "policy.json",
        hold_days=5,
        hold_days_min=5,
        hold_days_max=5,
        notice=EXAMPLE_NOTICE,
    )
    install_policy(private_home, signed)
    shown(settings, settle)
    hold = child(settings, QSpinBox, "hold_days")
    assert (hold.value(), hold.isReadOnly()) == (5, True)
    assert "cannot be changed here" in child(settings, QLabel, "hold_note").text()
    # The organisation's policy is installed: its exclusions are its own.
    assert "keepassxc (set by your organisation)" in entries(settings)


def test_the_session_length_is_chosen_within_its_bounds_and_kept(
    qtbot: QtBot, settings: SettingsWindow, service: Service, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    length = child(settings, QSpinBox, "session_minutes")
    assert (length.value(), length.minimum(), length.maximum()) == (60, 15, 240)
    assert "5 minutes without input" in child(settings, QLabel, "session_note").text()
    qtbot.keyClick(length, Qt.Key.Key_Down)
    settle()
    assert length.value() == 45
    assert service.session_minutes() == 45
    length.setValue(1000)  # clamped to the maximum by the spin box
    settle()
    assert service.session_minutes() == 240


def test_the_fewest_inputs_a_session_needs_is_chosen_and_kept(
    qtbot: QtBot,
    settings: SettingsWindow,
    service: Service,
    runner: Runner,
    settle: Callable[[], None],
) -> None:
    shown(settings, settle)
    least = child(settings, QSpinBox, "min_inputs")
    assert (least.value(), least.minimum(), least.maximum()) == (1, 0, 1000)
    assert least.text() == "1 input"
    note = child(settings, QLabel, "min_inputs_note").text()
    assert "nothing was typed, clicked or scrolled" in note
    assert "0 keeps every session" in note
    qtbot.keyClick(least, Qt.Key.Key_Down)
    settle()
    assert least.value() == 0
    assert least.text() == "0 inputs"
    assert min_inputs(service.paths) == 0
    least.setValue(5)
    settle()
    assert min_inputs(service.paths) == 5
    settings.close()
    again = SettingsWindow(runner)
    qtbot.addWidget(again)
    shown(again, settle)
    assert child(again, QSpinBox, "min_inputs").value() == 5


def test_nothing_overlaps_and_the_window_fits_a_1366_by_768_screen(
    qtbot: QtBot, settings: SettingsWindow, settle: Callable[[], None]
) -> None:
    shown(settings, settle)
    qtbot.waitUntil(lambda: settings.layout() is not None and not settings.layout().isEmpty())
    settle()
    assert settings.height() <= 768 - 32 - 30  # the panel and the title bar
    box = child(settings, QListWidget, "exclusions")
    order = [
        box,
        child(settings, QPushButton, "remove_exclusion"),
        child(settings, QComboBox, "add_app"),
        child(settings, QLabel, "windows_note"),
    ]
    tops = [w.mapTo(settings, w.rect().topLeft()).y() for w in order]
    bottoms = [w.mapTo(settings, w.rect().bottomLeft()).y() for w in order]
    for upper, lower in zip(bottoms, tops[1:], strict=False):
        assert upper < lower  # each below the one before, none drawn over another
