"""Settings: my exclusions, the pause hotkey, the hold period, the session
length and the fewest inputs a session needs to be kept, where my data lives.

Every exclusion change goes through the service, so it is ledgered like the
CLI's `cleartrace exclude`. The pause hotkey, the hold period (within the
policy's bounds) and the session length are preferences, not acts: they live in `settings.json` in
the home, through `cleartrace.preferences`, which the worker thread calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QKeySequenceEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.settings_sessions import SessionsBox
from cleartrace.ui.texts import describe_key_storage
from cleartrace.ui.widgets import label

__all__ = ["SettingsWindow"]

log = logging.getLogger(__name__)

# -- the window ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Loaded:
    exclusions: list[tuple[str, str]]
    policy: Policy
    home: str
    key_storage: dict[str, str] | None
    hotkey: str
    hold_days: int
    session_minutes: int
    min_inputs: int


def _load(svc: Service) -> _Loaded:
    snap = svc.snapshot()
    return _Loaded(
        svc.exclusions(),
        svc.policy,
        snap.home,
        snap.key_storage,
        svc.pause_hotkey(),
        snap.hold_days,
        svc.session_minutes(),
        svc.min_inputs(),
    )


def _open_windows(svc: Service) -> list[str]:
    return svc.open_window_classes()


#: Where an exclusion comes from, as the list says it: the person's own, the
#: installed organisation's policy, or ClearTrace's built-in policy.
_SOURCE = {"personal": "yours", "default": "set by your organisation"}
_BUILT_IN = "built into ClearTrace"


class SettingsWindow(QWidget):
    """Exclusions ("exclusions", "add_app", "add_exclusion", "remove_exclusion"),
    the pause hotkey ("pause_hotkey", "clear_hotkey"), the hold period
    ("hold_days", editable within the policy's bounds), the sessions' length and
    the fewest inputs kept (`SessionsBox`) and where data lives ("home", "key_storage").

    `hotkey_changed` carries the new hotkey (portable text, "" for none) once saved.
    """

    hotkey_changed = Signal(str)

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self._runner = runner
        self._busy = False
        self._excluded: set[str] = set()
        self._built_in = True  # until the policy is loaded
        self._open: list[str] = []
        self._saved_hotkey = ""
        self.setWindowTitle("ClearTrace: settings")
        self.setMinimumWidth(520)
        # The boxes scroll rather than squeeze into each other on a low screen.
        content = QWidget()
        boxes = QVBoxLayout(content)
        boxes.setContentsMargins(0, 0, 0, 0)
        self._sessions = SessionsBox(runner, lambda: self._error.hide(), self._show_error)
        for box in (self._exclusions_box(), self._hotkey_box(), self._hold_box()):
            boxes.addWidget(box)
        boxes.addWidget(self._sessions)
        boxes.addWidget(self._data_box())
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self._scroll, 1)
        self._error = label("error", "")
        self._error.setStyleSheet("color: #b00020;")
        self._error.hide()
        layout.addWidget(self._error)
        self._update_buttons()

    def _exclusions_box(self) -> QGroupBox:
        box = QGroupBox("Applications never recorded")
        layout = QVBoxLayout(box)
        layout.addWidget(
            label("exclusions_help", "While one of these is in front, nothing is recorded.")
        )
        self._list = QListWidget()
        self._list.setObjectName("exclusions")
        self._list.setMinimumHeight(150)
        self._list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self._list)
        self._remove = QPushButton("Remove from my exclusions")
        self._remove.setObjectName("remove_exclusion")
        self._remove.clicked.connect(self._on_remove)
        layout.addWidget(self._remove, alignment=Qt.AlignmentFlag.AlignRight)
        add = QHBoxLayout()
        self._app = QComboBox()
        self._app.setObjectName("add_app")
        self._app.setEditable(True)
        self._app.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        editor = self._app.lineEdit()
        if editor is not None:  # always, for an editable combo box
            editor.setPlaceholderText("an open application, or type its class")
        self._app.editTextChanged.connect(self._update_buttons)
        self._add = QPushButton("Exclude")
        self._add.setObjectName("add_exclusion")
        self._add.clicked.connect(self._on_add)
        add.addWidget(self._app, 1)
        add.addWidget(self._add)
        layout.addLayout(add)
        self._windows_note = label("windows_note", "Looking for open windows…")
        layout.addWidget(self._windows_note)
        return box

    def _hotkey_box(self) -> QGroupBox:
        box = QGroupBox("Pause hotkey")
        layout = QHBoxLayout(box)
        self._hotkey = QKeySequenceEdit()
        self._hotkey.setObjectName("pause_hotkey")
        self._hotkey.setMaximumSequenceLength(1)
        self._hotkey.editingFinished.connect(self._on_hotkey_edited)
        clear = QPushButton("No hotkey")
        clear.setObjectName("clear_hotkey")
        clear.clicked.connect(lambda: self._save_hotkey(""))
        self._hotkey_note = label("hotkey_note", "")
        layout.addWidget(self._hotkey)
        layout.addWidget(clear)
        layout.addWidget(self._hotkey_note, 1)
        return box

    def _hold_box(self) -> QGroupBox:
        box = QGroupBox("Before a finished session may leave this computer")
        layout = QFormLayout(box)
        self._hold = QSpinBox()
        self._hold.setObjectName("hold_days")
        self._hold.setSuffix(" days")
        self._hold.setRange(0, 365)
        self._hold.valueChanged.connect(self._save_hold)
        self._loading_hold = False
        layout.addRow("It waits for your review for", self._hold)
        self._hold_note = label("hold_note", "")
        layout.addRow(self._hold_note)
        return box

    def _data_box(self) -> QGroupBox:
        box = QGroupBox("Where your data lives")
        layout = QFormLayout(box)
        self._home = label("home", "")
        self._home.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._keys = label("key_storage", "")
        layout.addRow("Recordings and history:", self._home)
        layout.addRow("Encryption keys:", self._keys)
        return box

    # -- loading ------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._runner.call(_load, self._on_loaded, self._on_load_failed, owner=self)
        self._runner.call(_open_windows, self._on_windows, self._on_windows_failed, owner=self)

    def _on_loaded(self, data: _Loaded) -> None:
        self._built_in = data.policy.id == DEFAULT_POLICY.id
        self._show_exclusions(data.exclusions)
        self._show_hold(data.policy, data.hold_days)
        self._sessions.show_values(data.session_minutes, data.min_inputs)
        self._home.setText(data.home)
        self._keys.setText(describe_key_storage(data.key_storage))
        self._saved_hotkey = data.hotkey
        self._show_hotkey(data.hotkey)
        self._hotkey_note.setText(
            "Press it anywhere to pause or resume." if data.hotkey else "No pause hotkey set."
        )
        self._fit()

    def _fit(self) -> None:
        """As tall as the boxes want, but never taller than the screen has room
        for (a 1366x768 laptop: the rest scrolls)."""
        content = self._scroll.widget()
        wanted = (content.sizeHint().height() if content is not None else 0) + 24
        room = self.screen().availableGeometry().height() - 60
        self.resize(max(self.width(), 560), min(wanted, room, 706))

    def _show_hold(self, policy: Policy, days: int) -> None:
        low, high = policy.hold_days_min, policy.hold_days_max
        self._loading_hold = True
        self._hold.setRange(low, high)
        self._hold.setValue(days)
        self._loading_hold = False
        fixed = low == high
        self._hold.setReadOnly(fixed)
        self._hold.setButtonSymbols(
            QAbstractSpinBox.ButtonSymbols.NoButtons
            if fixed
            else QAbstractSpinBox.ButtonSymbols.UpDownArrows
        )
        source = f"your organisation's policy '{policy.id}' (version {policy.version})"
        self._hold_note.setText(
            "A finished session waits this long for your review; meanwhile you can read, "
            "redact, hold back or delete it. "
            + (
                f"The period is set by {source} and cannot be changed here."
                if fixed
                else f"You may choose from {low} to {high} days: {source} allows that."
            )
        )

    def _save_hold(self, days: int) -> None:
        if self._loading_hold:
            return
        self._error.hide()
        self._runner.call(
            lambda svc: svc.set_hold_days(days),
            None,
            lambda message: self._show_error(f"The hold period was not saved: {message}"),
            owner=self,
        )

    def _on_load_failed(self, message: str) -> None:
        self._show_error(f"Your settings could not be read: {message}")

    def _on_windows(self, classes: list[str]) -> None:
        self._open = classes
        self._fill_choices()
        self._windows_note.setText(
            "Pick an open application, or type an application's class "
            "(run 'xprop WM_CLASS' and click its window to see it)."
        )

    def _on_windows_failed(self, message: str) -> None:
        self._open = []
        self._fill_choices()
        self._windows_note.setText(
            f"The open windows cannot be listed ({message}). Type the application's class instead."
        )

    def _fill_choices(self) -> None:
        typed = self._app.currentText()
        self._app.blockSignals(True)
        self._app.clear()
        self._app.addItems([c for c in self._open if c not in self._excluded])
        self._app.setEditText(typed)
        self._app.blockSignals(False)
        self._update_buttons()

    def _show_exclusions(self, exclusions: list[tuple[str, str]]) -> None:
        self._excluded = {app for app, _ in exclusions}
        self._list.clear()
        # The person's own first: those are the ones they can change.
        for app, source in sorted(exclusions, key=lambda e: (e[1] != "personal", e[0])):
            said = _BUILT_IN if source == "default" and self._built_in else _SOURCE.get(source)
            item = QListWidgetItem(f"{app} ({said or source})")
            item.setData(Qt.ItemDataRole.UserRole, (app, source))
            self._list.addItem(item)
        self._fill_choices()

    # -- acting ---------------------------------------------------------------------------------

    def _selected_personal(self) -> str | None:
        items = self._list.selectedItems()
        if not items:
            return None
        app, source = items[0].data(Qt.ItemDataRole.UserRole)
        return str(app) if source == "personal" else None

    def _update_buttons(self) -> None:
        self._add.setEnabled(not self._busy and bool(self._app.currentText().strip()))
        self._remove.setEnabled(not self._busy and self._selected_personal() is not None)

    def _on_add(self) -> None:
        app = self._app.currentText().strip()
        if app:
            self._change(lambda svc: (svc.exclude(app), svc.exclusions()))

    def _on_remove(self) -> None:
        app = self._selected_personal()
        if app is not None:
            self._change(lambda svc: (svc.include(app), svc.exclusions()))

    def _change(self, act: Callable[[Service], tuple[str, list[tuple[str, str]]]]) -> None:
        self._busy = True
        self._error.hide()
        self._update_buttons()
        self._runner.call(act, self._on_changed, self._on_change_failed, owner=self)

    def _on_changed(self, result: tuple[str, list[tuple[str, str]]]) -> None:
        self._busy = False
        self._app.setEditText("")
        self._show_exclusions(result[1])

    def _on_change_failed(self, message: str) -> None:
        self._busy = False
        self._show_error(message)
        self._update_buttons()

    def _on_hotkey_edited(self) -> None:
        """Save a new hotkey; editing also "finishes" when the field merely loses
        focus, and that must not write (or announce) the same hotkey again."""
        text = self._hotkey.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
        if text != self._saved_hotkey:
            self._save_hotkey(text)

    def _save_hotkey(self, text: str) -> None:
        if not text:
            self._hotkey.clear()
        self._error.hide()
        self._runner.call(
            lambda svc: svc.set_pause_hotkey(text),
            lambda _none: self._on_hotkey_saved(text),
            self._on_hotkey_failed,
            owner=self,
        )

    def _on_hotkey_failed(self, message: str) -> None:
        self._show_error(f"The hotkey was not saved: {message}")
        self._show_hotkey(self._saved_hotkey)

    def _show_hotkey(self, text: str) -> None:
        self._hotkey.setKeySequence(
            QKeySequence.fromString(text, QKeySequence.SequenceFormat.PortableText)
        )

    def _on_hotkey_saved(self, text: str) -> None:
        self._saved_hotkey = text
        self._hotkey_note.setText(f"Saved: {text}." if text else "No pause hotkey set.")
        self.hotkey_changed.emit(text)

    def _show_error(self, text: str) -> None:
        self._error.setText(text)
        self._error.show()
