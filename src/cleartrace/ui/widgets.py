"""Small widget pieces the windows share."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QLabel, QWidget

__all__ = ["BusyDialog", "label"]


def label(name: str, text: str = "") -> QLabel:
    """A word-wrapping label with an objectName (tests and screenshots find it by name)."""
    widget = QLabel(text)
    widget.setObjectName(name)
    widget.setWordWrap(True)
    return widget


class BusyDialog(QDialog):
    """A dialog whose answer is stored through the runner.

    While `_busy` (an answer on its way), Escape, Cancel and the close button
    are ignored, so the person sees whether it worked; `_error` ("error") is
    the red line that says why not.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._busy = False
        self._error = label("error")
        self._error.setStyleSheet("color: #b00020;")
        self._error.hide()

    def _show_error(self, text: str) -> None:
        self._error.setText(text)
        self._error.show()

    def reject(self) -> None:
        if not self._busy:
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self._busy:
            event.ignore()
        else:
            super().closeEvent(event)
