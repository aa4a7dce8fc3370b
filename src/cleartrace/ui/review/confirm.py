"""The last look before anything is removed (or released): what goes, counted,
and the text itself.

The dialog only shows what the window worked out beforehand (a `Selection`
from the service: the dry run); it decides nothing and calls nothing.
Cancel is the default button, so Enter never removes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cleartrace.ui.review._format import counts_text

__all__ = ["DELETE_NOTE", "REDACT_NOTE", "ConfirmDialog", "release_dialog"]

#: What the confirmation of each kind of removal says cannot be undone, and why.
REDACT_NOTE = (
    "This cannot be undone. The consent ledger records that a redaction happened "
    "(when, how many events, which categories), never what it removed."
)
DELETE_NOTE = (
    "This cannot be undone: the session's key is destroyed first, so nothing of it "
    "can be read again. The consent ledger records the deletion."
)

_RELEASE_NOTE = (
    "Say so only if it is not personal data or a secret (an order number that looks "
    "like a phone number, say): it is then uploaded as typed. The consent ledger "
    "records that you released a detection of this kind, never the text."
)

_MAX_TEXTS = 500  # more would not be read; the count says how many are left out


class ConfirmDialog(QDialog):
    """Asks before a removal. `accepted` means remove, `rejected` means leave it all."""

    def __init__(
        self,
        parent: QWidget | None,
        *,
        what: str,
        counts: Mapping[str, int] | None,
        texts: Sequence[str] = (),
        note: str,
        ok_text: str = "Remove",
        texts_heading: str = "The text that will be gone:",
        title: str = "ClearTrace — confirm removal",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("confirm")
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        heading = QLabel(what)
        heading.setObjectName("confirm_what")
        heading.setWordWrap(True)
        heading.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        if counts is not None:
            counted = QLabel(f"Events that will be removed: {counts_text(counts)}")
            counted.setObjectName("confirm_counts")
            counted.setWordWrap(True)
            layout.addWidget(counted)
        if texts:
            layout.addWidget(QLabel(texts_heading))
            shown = QPlainTextEdit()
            shown.setObjectName("confirm_text")
            shown.setReadOnly(True)
            lines = list(texts[:_MAX_TEXTS])
            if len(texts) > _MAX_TEXTS:
                lines.append(f"… and {len(texts) - _MAX_TEXTS} more")
            shown.setPlainText("\n".join(lines))
            layout.addWidget(shown, 1)
        warning = QLabel(note)
        warning.setWordWrap(True)
        layout.addWidget(warning)

        self.ok = QPushButton(ok_text)
        self.ok.setObjectName("confirm_ok")
        self.ok.setAutoDefault(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("confirm_cancel")
        self.cancel.setDefault(True)
        self.ok.clicked.connect(self.accept)
        self.cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.ok)
        layout.addLayout(buttons)
        self.resize(520, 360 if texts else 200)


def release_dialog(parent: QWidget, kind: str, line: str) -> ConfirmDialog:
    """Asks before a detection of `kind` (the text `line`) is uploaded as typed."""
    return ConfirmDialog(
        parent,
        what=f"This was detected as {kind}. Is it not personal data?",
        counts=None,
        texts=[line],
        note=_RELEASE_NOTE,
        ok_text="Upload as typed",
        texts_heading="The text that will be uploaded as typed:",
        title="ClearTrace — release a detection",
    )
