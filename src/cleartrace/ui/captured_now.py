"""What is being captured now: a live view of the recorder, refreshed every second.

It shows states and counts only, never what was typed: per category whether
its hook is on and how many events this session holds, the application in
front (its class; whether titles are recorded, never a title), whether an
excluded application or a pause stops recording, and where the keys are kept.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from cleartrace.categories import Category
from cleartrace.service import Service
from cleartrace.status import Status
from cleartrace.ui.runner import Runner
from cleartrace.ui.texts import CATEGORY_TEXTS, describe_key_storage, local_time
from cleartrace.ui.widgets import label

__all__ = ["CapturedNowWindow", "category_state", "state_line"]

#: The hook (capture/base.py HOOK_NAMES) that records each category (typing
#: rhythm records nothing: it has a line of its own).
_HOOK = {
    Category.KEYS: "keyboard",
    Category.MOUSE_MOVE: "mouse.move",
    Category.CLICKS: "mouse.click",
    Category.SCROLL: "mouse.scroll",
    Category.APP_FOCUS: "focus",
    Category.WINDOW_TITLES: "focus.titles",
}


def _rhythm_line(snap: Status) -> str:
    # Typing rhythm captures nothing: it decides how the keys' timing leaves.
    if Category.TYPING_RHYTHM in snap.granted:
        return "Typing rhythm: your keys' timing may leave as typed."
    return "Typing rhythm: your keys' timing is evened out before upload."


def _snapshot(svc: Service) -> Status:
    return svc.snapshot()


def state_line(snap: Status) -> str:
    """The recorder's state in one sentence."""
    if snap.state == "recording":
        if snap.excluded_now:
            return "Recording, but an excluded application is in front: nothing is kept now."
        return "Recording what you agreed to."
    if snap.state == "paused":
        if snap.paused_until is None:
            return "Paused until you resume: nothing is recorded."
        return f"Paused until {local_time(snap.paused_until)}: nothing is recorded."
    if snap.state == "cannot record":
        return f"Cannot record: {snap.reason or 'the reason is unknown'}"
    if not snap.granted:
        return "Off: you have not consented to anything, so nothing is recorded."
    return "Off: nothing is recorded."


def category_state(snap: Status, category: Category) -> str:
    """One category's state ("on", "off (no consent)", …), from the hook actually installed."""
    if category not in snap.granted:
        return "off (no consent)"
    if _HOOK[category] not in snap.hooks:
        return "paused" if snap.state == "paused" else "off (not recording)"
    if snap.excluded_now:
        return "on, nothing kept (excluded app)"
    return "on"


def _application_line(snap: Status) -> str:
    if "focus" not in snap.hooks:
        if Category.APP_FOCUS in snap.granted:
            return "Application in front: not recorded right now."
        return "Application in front: not recorded (no consent)."
    if snap.excluded_now:
        return "Application in front: an excluded application; nothing is recorded."
    return f"Application in front: {snap.application or 'unknown'}"


def _titles_line(snap: Status) -> str:
    if "focus.titles" in snap.hooks and not snap.excluded_now:
        return "Window titles are recorded (they are not shown here)."
    return "Window titles are not recorded."


class CapturedNowWindow(QWidget):
    """Refreshes through the runner while shown, with at most one call in flight."""

    def __init__(
        self, runner: Runner, parent: QWidget | None = None, *, interval_ms: int = 1000
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self._runner = runner
        self._in_flight = False
        self._sized = False
        self.setWindowTitle("ClearTrace: what is captured now")
        self.setMinimumWidth(460)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._refresh)

        layout = QVBoxLayout(self)
        self._state = label("state", "Looking…")
        font = self._state.font()
        font.setBold(True)
        self._state.setFont(font)
        layout.addWidget(self._state)

        # Attached first, so each label added below gets this window as its parent
        # at once; a parentless temporary label would be freed by Python too early.
        grid = QGridLayout()
        layout.addLayout(grid)
        for column, heading in enumerate(("What", "Now", "This session")):
            grid.addWidget(QLabel(f"<b>{heading}</b>"), 0, column)
        self._status: dict[Category, QLabel] = {}
        self._counts: dict[Category, QLabel] = {}
        for row, category in enumerate(_HOOK, start=1):
            grid.addWidget(QLabel(CATEGORY_TEXTS[category].label), row, 0)
            self._status[category] = label(f"status_{category.value}", "")
            self._status[category].setWordWrap(False)  # one short line: a row never clips it
            self._counts[category] = label(f"count_{category.value}", "")
            self._counts[category].setAlignment(Qt.AlignmentFlag.AlignRight)
            grid.addWidget(self._status[category], row, 1)
            grid.addWidget(self._counts[category], row, 2)

        self._excluded = label("excluded_intervals", "")
        self._application = label("application", "")
        self._titles = label("titles", "")
        self._rhythm = label("rhythm", "")
        self._keys = label("key_storage", "")
        for line in (self._excluded, self._application, self._titles, self._rhythm, self._keys):
            layout.addWidget(line)
        layout.addWidget(
            label(
                "no_content",
                "What you type is never shown here; read it in the review window.",
            )
        )
        self._error = label("error", "")
        self._error.setStyleSheet("color: #b00020;")
        self._error.hide()
        layout.addWidget(self._error)
        layout.addStretch(1)

    # -- refreshing -------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._refresh()
        self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt's name)
        self._timer.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self._timer.stop()
        super().closeEvent(event)

    def _refresh(self) -> None:
        """Ask for a snapshot unless one is still on its way: a slow disk must not
        pile calls up behind each other."""
        if self._in_flight:
            return
        self._in_flight = True
        self._runner.call(_snapshot, self._on_snapshot, self._on_error, owner=self)

    def _on_snapshot(self, snap: Status) -> None:
        self._in_flight = False
        self._error.hide()
        self._state.setText(state_line(snap))
        for category in _HOOK:
            self._status[category].setText(category_state(snap, category))
            self._counts[category].setText(f"{snap.session_counts.get(category.value, 0):,}")
        markers = snap.session_counts.get("excluded_markers", 0)
        self._excluded.setText(f"Excluded intervals this session: {markers:,}")
        self._application.setText(_application_line(snap))
        self._titles.setText(_titles_line(snap))
        self._rhythm.setText(_rhythm_line(snap))
        keys = describe_key_storage(snap.key_storage)
        self._keys.setText(f"Keys that encrypt your recordings: {keys}")
        if not self._sized:  # it was sized before the labels had any text
            self._sized = True
            self.adjustSize()

    def _on_error(self, message: str) -> None:
        self._in_flight = False
        self._error.setText(f"The current state could not be read: {message}")
        self._error.show()
