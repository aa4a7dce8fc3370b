"""The Settings window's "Sessions" box: how long a session runs and how
much input it needs to be kept.

Its own module because both are about sessions rather than data, and the
window's module was at its size limit. Both are preferences saved through
the service on the worker thread, like the rest of Settings.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFormLayout, QGroupBox, QSpinBox, QWidget

from cleartrace.preferences import (
    IDLE_MINUTES,
    MIN_INPUTS_MAX,
    SESSION_MINUTES_MAX,
    SESSION_MINUTES_MIN,
)
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.widgets import label

__all__ = ["SessionsBox"]

_LENGTH_NOTE = (
    f"Then the next input begins a new session, so that you can review the day's "
    f"sessions while recording goes on (from {SESSION_MINUTES_MIN} to "
    f"{SESSION_MINUTES_MAX} minutes). A session also ends after {IDLE_MINUTES} "
    "minutes without input and when the screen locks."
)
_INPUTS_NOTE = (
    "Key presses, clicks and scroll steps count; mouse moves and switching windows "
    "do not. A session with fewer is removed when it ends (ledgered as a deletion): "
    "one in which nothing was typed, clicked or scrolled is not kept. 0 keeps every session."
)


class SessionsBox(QGroupBox):
    """The session length ("session_minutes", "session_note") and the fewest
    inputs a session needs to be kept ("min_inputs", "min_inputs_note").
    `on_saving` runs before each save, `on_error` with the message of one that failed."""

    def __init__(
        self,
        runner: Runner,
        on_saving: Callable[[], None],
        on_error: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Sessions", parent)
        self._runner, self._on_saving, self._on_error = runner, on_saving, on_error
        self._loading = False
        layout = QFormLayout(self)
        self._length = QSpinBox()
        self._length.setObjectName("session_minutes")
        self._length.setSuffix(" minutes")
        self._length.setRange(SESSION_MINUTES_MIN, SESSION_MINUTES_MAX)
        self._length.setSingleStep(15)
        self._length.valueChanged.connect(
            lambda minutes: self._save(
                lambda svc: svc.set_session_minutes(minutes), "The session length"
            )
        )
        layout.addRow("A session ends after", self._length)
        layout.addRow(label("session_note", _LENGTH_NOTE))
        self._least = QSpinBox()
        self._least.setObjectName("min_inputs")
        self._least.setRange(0, MIN_INPUTS_MAX)
        self._least.setSuffix(" inputs")  # 0, until a value is shown
        self._least.valueChanged.connect(  # "1 input", "0 inputs"
            lambda count: self._least.setSuffix(" input" if count == 1 else " inputs")
        )
        self._least.valueChanged.connect(
            lambda count: self._save(
                lambda svc: svc.set_min_inputs(count), "The fewest inputs kept"
            )
        )
        layout.addRow("A session is kept with at least", self._least)
        layout.addRow(label("min_inputs_note", _INPUTS_NOTE))

    def show_values(self, session_minutes: int, min_inputs: int) -> None:
        """Show what is saved (nothing is saved again)."""
        self._loading = True
        self._length.setValue(session_minutes)
        self._least.setValue(min_inputs)
        self._loading = False

    def _save(self, act: Callable[[Service], None], what: str) -> None:
        if self._loading:
            return
        self._on_saving()
        self._runner.call(
            act,
            None,
            lambda message: self._on_error(f"{what} was not saved: {message}"),
            owner=self,
        )
