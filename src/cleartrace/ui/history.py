"""My consent history: the ledger as a readable table, and whether it verifies.

Each record is put in words ("Consent given: keys, clicks", "Paused until
10:15"); its raw kind stays in the last column for whoever compares it with an
export. The banner runs the same verification an officer runs on an export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cleartrace.actions.ledger import LedgerView
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.texts import category_names, local_time

__all__ = ["HistoryWindow", "banner_text", "describe_record"]

_Record = Mapping[str, Any]


def _session(record: _Record) -> str:
    return f"Session {str(record['session'])[:4]}…"


def _events(n: object) -> str:
    return "1 event" if n == 1 else f"{n} events"


#: What each redaction method took out, in words.
_METHODS = {
    "span": "selected text removed",
    "time": "a time range removed",
    "match": "matching text removed",
    "pii": "detected personal data removed",
    "forget": "the last minutes forgotten",
}


def _redacted(record: _Record) -> str:
    what = _METHODS.get(str(record["method"]), f"'{record['method']}'")
    return f"{_session(record)} redacted: {what} ({_events(record['events'])})"


def _withheld(record: _Record) -> str:
    spans = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(record["spans"].items()))
    return f"{_session(record)} uploaded without what was detected as personal data ({spans})"


def _rollback(record: _Record) -> str:
    return (
        f"Uploads stopped: the collector has seen record {record['witnessed']['seq']} of this "
        f"history, this computer only {record['local']['seq']} (restored from an old "
        "backup?); ask your privacy officer"
    )


def _paused(record: _Record) -> str:
    until = record["until"]
    return "Paused until you resume" if until is None else f"Paused until {local_time(until)}"


#: Which key timing an upload carried (`bundle.uploaded` records written before
#: it was said have none, and get no words).
_TIMING_WORDS = {
    "even": ", your typing rhythm evened out",
    "raw": ", with your typing rhythm as typed",
}

_DESCRIBE: dict[str, Callable[[_Record], str]] = {
    "consent.given": lambda r: f"Consent given: {category_names(r['categories'])}",
    "consent.refused": lambda r: f"Consent refused: {category_names(r['categories'])}",
    "consent.withdrawn": lambda r: f"Consent withdrawn: {category_names(r['categories'])}",
    "recording.paused": _paused,
    "recording.resumed": lambda r: (
        "Resumed when the pause ended" if r["reason"] == "timer" else "Resumed by you"
    ),
    "exclusion.added": lambda r: f"Exclusion added: {r['app']} is never recorded",
    "exclusion.removed": lambda r: f"Exclusion removed: {r['app']} may be recorded again",
    # The ledger names the application only by a keyed hash; Settings shows the names.
    "app.excluded": lambda r: "Exclusion added: an application of yours is never recorded",
    "app.included": lambda r: "Exclusion removed: an application may be recorded again",
    "session.started": lambda r: f"{_session(r)} started",
    "session.ended": lambda r: f"{_session(r)} ended",
    "session.deleted": lambda r: f"{_session(r)} deleted",
    "session.redacted": _redacted,
    "upload.redacted": _withheld,
    "detection.released": lambda r: (
        f"{_session(r)}: you released one detection ({str(r['pii']).replace('_', ' ')}): "
        "it is uploaded as typed"
    ),
    "session.shredded": lambda r: (
        f"{_session(r)} removed from this computer: uploaded, and its time here was up"
    ),
    "bundle.uploaded": lambda r: (
        f"Uploaded to your organisation (bundle {r['bundle'][:8]}…)"
        + _TIMING_WORDS.get(str(r.get("timing")), "")
    ),
    "device.enrolled": lambda r: (
        f"Enrolled with your organisation under its policy '{r['policy']['id']}' "
        f"version {r['policy']['version']}"
    ),
    "key.rotated": lambda r: "Master key replaced: a copy of the old one opens nothing",
    "ledger.rollback": _rollback,
    "session.approved": lambda r: (
        f"{_session(r)} approved when its hold period ended"
        if r["by"] == "hold_period"
        else f"{_session(r)} approved by you"
    ),
    "session.held": lambda r: f"{_session(r)} held back: it never leaves on its own",
}


def describe_record(record: _Record) -> str:
    """One ledger record in words; never fails, whatever a tampered file holds."""
    kind = str(record.get("kind", ""))
    describe = _DESCRIBE.get(kind)
    if describe is None:
        return f"A '{kind}' record (written by a newer ClearTrace)"
    try:
        return describe(record)
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"A '{kind}' record whose details cannot be read"


def banner_text(view: LedgerView, device: str) -> str:
    """The verification in one line: "Verified: N records, signed by this device
    (sha256:…)" or "Broken at record N: …"."""
    if view.broken_at is not None:
        prefix = f"ledger broken at record {view.broken_at}: "
        reason = (view.reason or "").removeprefix(prefix)
        if view.broken_at == 0:
            return f"Broken: {reason}"
        return f"Broken at record {view.broken_at}: {reason}"
    if not view.verified:
        return "Not verified: the history changed while it was being checked; refresh to retry."
    if not view.records:
        return "Nothing recorded yet: you have not been asked for consent."
    n = len(view.records)
    return f"Verified: {n} record{'s' if n != 1 else ''}, signed by this device ({device})"


def _when(value: object) -> str:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone()
    except ValueError:
        return str(value)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _load(svc: Service) -> tuple[LedgerView, str]:
    return svc.ledger(), svc.home().ledger.device


class HistoryWindow(QWidget):
    """The "banner" label, the "records" table (seq, time, in words, kind) and "refresh"."""

    COLUMNS = ("#", "Time", "What happened", "Record kind")

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self._runner = runner
        self._loading = False
        self.setWindowTitle("ClearTrace: my consent history")
        self.resize(760, 480)

        layout = QVBoxLayout(self)
        self._banner = QLabel("Checking your history…")
        self._banner.setObjectName("banner")
        self._banner.setWordWrap(True)
        self._banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._banner)
        explain = QLabel(
            "Every consent, refusal, withdrawal, pause, exclusion and change to your "
            "sessions is kept here, signed by this computer, so that any change to the "
            "history shows. It holds no recorded content."
        )
        explain.setWordWrap(True)
        layout.addWidget(explain)

        self._table = QTableWidget(0, len(self.COLUMNS))
        self._table.setObjectName("records")
        self._table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self._table.verticalHeader().setVisible(False)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self._table)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self._refresh = QPushButton("Refresh")
        self._refresh.setObjectName("refresh")
        self._refresh.clicked.connect(self.reload)
        buttons.addWidget(self._refresh)
        layout.addLayout(buttons)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.reload()

    def reload(self) -> None:
        """Read and verify the ledger again (on the worker thread)."""
        if self._loading:
            return
        self._loading = True
        self._refresh.setEnabled(False)
        self._runner.call(_load, self._on_loaded, self._on_error, owner=self)

    def _on_loaded(self, result: tuple[LedgerView, str]) -> None:
        view, device = result
        self._loading = False
        self._refresh.setEnabled(True)
        self._banner.setText(banner_text(view, device))
        ok = view.verified and view.broken_at is None
        self._banner.setStyleSheet("" if ok else "color: #b00020; font-weight: bold;")
        self._table.setRowCount(len(view.records))
        for row, record in enumerate(view.records):
            cells = (
                str(record.get("seq", "")),
                _when(record.get("time", "")),
                describe_record(record),
                str(record.get("kind", "")),
            )
            broken = view.broken_at is not None and record.get("seq") == view.broken_at
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if broken:
                    item.setBackground(QBrush(QColor("#fde0e0")))
                    item.setToolTip("Verification fails from this record on.")
                self._table.setItem(row, column, item)
        self._table.scrollToBottom()

    def _on_error(self, message: str) -> None:
        self._loading = False
        self._refresh.setEnabled(True)
        self._banner.setText(f"Your history could not be read: {message}")
        self._banner.setStyleSheet("color: #b00020;")
