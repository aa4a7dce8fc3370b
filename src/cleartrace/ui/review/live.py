"""Over a session that is still being recorded: why it cannot be reviewed yet,
and "End this session now", which ends it (recording goes on in a new session
with the next input) so that it can be reviewed at once."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from cleartrace.actions.recording import Ended
from cleartrace.consent.removal import NOT_KEPT
from cleartrace.ui.runner import Runner

__all__ = ["ENDED", "NOT_KEPT_NOTICE", "LiveNote"]

WHY = (
    "This session is still being recorded: it can be reviewed, approved, held or "
    "deleted once it ends. End it now, and recording goes on in a new session."
)
ENDED = "Ended: the session can be reviewed now; recording goes on in a new one."
NOT_KEPT_NOTICE = f"Ended: {NOT_KEPT}; recording goes on in a new one."


class LiveNote(QWidget):
    """Hidden unless the chosen session is being recorded. Its button asks the
    service (on the runner) to end the session; `ended` carries the ended
    session's id (None: none was open, or it was not kept) and what to tell
    the person, `failed` the message of an error."""

    ended = Signal(object, str)
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

    def _done(self, ended: Ended | None) -> None:
        self.button.setEnabled(True)
        if ended is not None and not ended.kept:  # nothing typed, clicked or scrolled
            self.ended.emit(None, NOT_KEPT_NOTICE)
        else:
            self.ended.emit(None if ended is None else ended.id, ENDED)
