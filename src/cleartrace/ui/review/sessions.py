"""The list of sessions: when, how long, where, how much, and where each stands."""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState
from cleartrace.ui.review._format import counts_text, day_and_clock, duration, short_id

__all__ = ["COLUMNS", "SessionTable", "approval_text", "summary_text"]

COLUMNS = ("Start", "Duration", "Applications", "Counts", "State", "Approval")
_ID = Qt.ItemDataRole.UserRole
_MAX_APPS = 4


def approval_text(info: SessionInfo, auto_approve_ns: int | None, now_ns: int | None = None) -> str:
    """Where the session stands on its way to upload, in the person's words."""
    if info.state == SessionState.PENDING:
        if auto_approve_ns is None:
            return "waiting for your review"
        return f"approves itself on {day_and_clock(auto_approve_ns, now_ns)} unless held"
    return {
        SessionState.APPROVED: "approved",
        SessionState.HELD: "held: never approves itself",
        SessionState.RECORDING: "still recording",
    }.get(info.state, info.state)


def _applications(apps: Sequence[str]) -> str:
    if not apps:
        return "—"
    shown = ", ".join(apps[:_MAX_APPS])
    return f"{shown} +{len(apps) - _MAX_APPS}" if len(apps) > _MAX_APPS else shown


class SessionTable(QTableWidget):
    """Newest first; `chosen` carries the selected session's id (None: none)."""

    chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("sessions")
        self.setAccessibleName("Recorded sessions")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self._entries: dict[str, tuple[SessionInfo, int | None]] = {}
        self.itemSelectionChanged.connect(lambda: self.chosen.emit(self.selected_id()))

    def show_sessions(self, rows: Sequence[tuple[SessionInfo, int | None]]) -> None:
        """Replace the rows, keeping the selected session selected if it is still there.

        `chosen` is emitted only if the selection changes (its session went).
        """
        selected = self.selected_id()
        now = time.time_ns()
        self._entries = {info.id: (info, auto) for info, auto in rows}
        self.blockSignals(True)
        self.setRowCount(0)
        for row, (info, auto) in enumerate(sorted(rows, key=lambda r: -r[0].started_ns)):
            self.insertRow(row)
            length = (
                "recording" if info.ended_ns is None else duration(info.ended_ns - info.started_ns)
            )
            cells = (
                day_and_clock(info.started_ns, now),
                length,
                _applications(info.applications),
                counts_text(info.counts),
                info.state,
                approval_text(info, auto, now),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(_ID, info.id)
                self.setItem(row, column, item)
        if selected in self._entries:
            self.select_id(selected)
        self.blockSignals(False)
        if selected is not None and selected not in self._entries:
            self.chosen.emit(None)

    def selected_id(self) -> str | None:
        items = self.selectedItems()
        return None if not items else str(items[0].data(_ID))

    def select_id(self, session_id: str) -> None:
        for row in range(self.rowCount()):
            item = self.item(row, 0)
            if item is not None and item.data(_ID) == session_id:
                self.selectRow(row)
                return
        raise ValueError(f"session {session_id[:12]} is not listed")

    def info(self, session_id: str) -> SessionInfo | None:
        entry = self._entries.get(session_id)
        return None if entry is None else entry[0]

    def entry(self, session_id: str) -> tuple[SessionInfo, int | None] | None:
        """The session as last listed, with when it approves itself."""
        return self._entries.get(session_id)

    def session_ids(self) -> list[str]:
        """The listed sessions, top to bottom."""
        items = (self.item(row, 0) for row in range(self.rowCount()))
        return [str(item.data(_ID)) for item in items if item is not None]


def summary_text(info: SessionInfo, auto_approve_ns: int | None, redactions: int) -> str:
    """The chosen session in one line, above its timeline."""
    ended = info.ended_ns
    length = "still recording" if ended is None else duration(ended - info.started_ns)
    approval = approval_text(info, auto_approve_ns)
    parts = [
        f"Session {short_id(info.id)}",
        f"started {day_and_clock(info.started_ns)}, {length}",
        counts_text(info.counts),
        f"pending review, {approval}" if info.state == SessionState.PENDING else approval,
    ]
    if redactions:
        parts.append(f"{redactions} redaction(s) so far")
    return " · ".join(parts)
