"""Over a session that is still being recorded: why it cannot be reviewed yet,
and "End this session now", which ends it (recording goes on in a new session
with the next input) so that it can be reviewed at once."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from cleartrace.ui.runner import Runner

__all__ = ["ENDED", "LiveNote"]

WHY = (
    "This session is still being recorded: it can be reviewed, approved, held or "
    "deleted once it ends. End it now, and recording goes on in a new session."
)
ENDED = "Ended: the session can be reviewed now; recording goes on in a new one."


class LiveNote(QWidget):
    """Hidden unless the chosen session is being recorded. Its button asks the
    service (on the runner) to end the session; `ended` carries the ended
    session's id (None: none was open), `failed` the message of an error."""

    ended = Signal(object)
    failed = Signal(str)

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        note = QLabel(WHY)
        note.setObjectName("live_note")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        self.button = QPushButton("End this session now")
        self.button.setObjectName("end_session")
        self.button.clicked.connect(self._end)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(note, 1)
        layout.addWidget(self.button)
        self.hide()

    def _end(self) -> None:
        self.button.setEnabled(False)
        self._runner.call(lambda svc: svc.end_session(), self._done, self._failed, owner=self)

    def _failed(self, message: str) -> None:
        self.button.setEnabled(True)  # the person may try again
        self.failed.emit(message)

    def _done(self, session_id: str | None) -> None:
        self.button.setEnabled(True)
        self.ended.emit(session_id)
