"""Withdrawing consent: one confirmation, as easy as giving it.

What stops is said plainly, local sessions may be deleted in the same act,
and the dialog closes only once the withdrawal is in the ledger.
"""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cleartrace.categories import Category
from cleartrace.consent.state import ConsentStatus
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.texts import CATEGORY_TEXTS
from cleartrace.ui.widgets import BusyDialog

__all__ = ["WithdrawDialog"]


def _given(svc: Service) -> list[Category]:
    return [c for c, s in svc.consent().items() if s is ConsentStatus.GIVEN]


def _withdraw_all(svc: Service, delete_sessions: bool) -> list[Category]:
    """Withdraw whatever is given at the moment of the click (the CLI may have
    changed it since the dialog opened)."""
    given = _given(svc)
    if not given:
        return []
    return svc.withdraw(given, delete_sessions=delete_sessions)


class WithdrawDialog(BusyDialog):
    """One confirmation: "withdraw" withdraws every given category, with
    "delete_sessions" ticked it deletes the local sessions too; "cancel" changes
    nothing."""

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._given: list[Category] = []
        self._loading = False
        self.setWindowTitle("ClearTrace: withdraw consent")
        self.setMinimumWidth(480)

        layout = QVBoxLayout(self)
        self._summary = QLabel("Looking up what you consented to…")
        self._summary.setObjectName("given")
        self._summary.setWordWrap(True)
        layout.addWidget(self._summary)
        stops = QLabel(
            "Withdrawing stops all recording at once: ClearTrace removes its keyboard, "
            "mouse and window hooks within a second and records nothing more until you "
            "consent again. Your withdrawal is written to your consent history.\n\n"
            "Sessions already recorded stay on this computer, for you to review or "
            "delete, unless you choose to delete them now."
        )
        stops.setObjectName("what_stops")
        stops.setWordWrap(True)
        layout.addWidget(stops)
        self._delete = QCheckBox("Also delete all my local sessions")
        self._delete.setObjectName("delete_sessions")
        self._delete.setToolTip("Their keys are destroyed first, so they cannot be read again.")
        layout.addWidget(self._delete)
        layout.addWidget(self._error)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self._cancel = QPushButton("Cancel")
        self._cancel.setObjectName("cancel")
        self._cancel.clicked.connect(self.reject)
        self._withdraw = QPushButton("Withdraw consent")
        self._withdraw.setObjectName("withdraw")
        self._withdraw.setAutoDefault(False)
        self._withdraw.clicked.connect(self._on_withdraw)
        buttons.addWidget(self._cancel)
        buttons.addWidget(self._withdraw)
        layout.addLayout(buttons)
        self._update_buttons()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if not self._loading and not self._busy:
            self._loading = True
            self._update_buttons()
            self._runner.call(_given, self._on_loaded, self._on_load_failed, owner=self)

    def _on_loaded(self, given: list[Category]) -> None:
        self._loading = False
        self._given = given
        if given:
            names = ", ".join(CATEGORY_TEXTS[c].label.lower() for c in given)
            self._summary.setText(f"You have consented to: {names}.")
        else:
            self._summary.setText("You have not consented to anything: nothing is recorded.")
        self._update_buttons()
        self.adjustSize()

    def _on_load_failed(self, message: str) -> None:
        self._loading = False
        self._summary.setText("Your consent could not be read.")
        self._show_error(f"{message}. Close this window and try again.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self._withdraw.setEnabled(bool(self._given) and not (self._loading or self._busy))
        self._cancel.setEnabled(not self._busy)
        self._delete.setEnabled(not self._busy)

    def _on_withdraw(self) -> None:
        delete = self._delete.isChecked()
        self._busy = True
        self._error.hide()
        self._update_buttons()
        self._runner.call(
            lambda svc: _withdraw_all(svc, delete), self._on_done, self._on_failed, owner=self
        )

    def _on_done(self, _withdrawn: list[Category]) -> None:
        self._busy = False
        self.accept()

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self._show_error(f"Your consent could not be withdrawn: {message}")
        self._update_buttons()
