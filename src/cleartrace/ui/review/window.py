"""The review window: see what a session holds, take out what should not be
there, then approve, hold or delete it (the session being recorded: end it first).

Every question and act goes to the service through the `Runner`, so the
window stays responsive while an eight-hour session is decrypted and
analysed. Every removal goes in two steps: the service works out what it
would remove (a `Selection`: the dry run), the person sees that in the
confirmation, and only their OK sends `redact`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from cleartrace.actions.sessions import SessionReview
from cleartrace.review.redaction import Selection
from cleartrace.service import Service
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState
from cleartrace.ui.review._format import clock, counts_text, day_and_clock
from cleartrace.ui.review.confirm import DELETE_NOTE, REDACT_NOTE, ConfirmDialog, release_dialog
from cleartrace.ui.review.live import LiveNote
from cleartrace.ui.review.loading import Loaded, load
from cleartrace.ui.review.sessions import SessionTable, summary_text
from cleartrace.ui.review.text_view import TextPane
from cleartrace.ui.review.timeline import Timeline
from cleartrace.ui.runner import Runner

__all__ = ["ReviewWindow"]


class ReviewWindow(QWidget):
    """Sessions, and for the chosen one its timeline, its text and the acts on it.

    `table`, `timeline` and `text` are its parts, public for the tray and tests;
    the buttons are found by object name (redact_selection, redact_range,
    redact_pii, release, delete, approve, hold, end_session), as are the labels status,
    summary, range, error and live_note.
    """

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("review_window")
        self.setWindowTitle("ClearTrace — review sessions")
        self._runner = runner
        self._review: SessionReview | None = None
        self._loading: str | None = None  # the session whose review is on its way
        self._busy = False  # a removal or a change of state is under way
        self._notice = ""  # said once the reload after an act has arrived
        self._stream: int | None = None  # the stream to show again once a reload arrives

        self.table = SessionTable()
        self.timeline = Timeline()
        self.text = TextPane()
        self._summary = self._label("summary")
        self._status = self._label("status")
        self._range = self._label("range")
        self._error = self._label("error")
        self._error.setStyleSheet("color: #b00020;")
        self._error.hide()
        self._live = LiveNote(runner)
        self._live.ended.connect(self._reload)
        self._live.failed.connect(self._fail)
        self._buttons: dict[str, QPushButton] = {}
        actions: list[tuple[str, str, Callable[[], None]]] = [
            ("redact_selection", "Remove selected text…", self._redact_selection),
            ("redact_range", "Remove time range…", self._redact_range),
            ("redact_pii", "Remove all detected personal data…", self._redact_pii),
            ("release", "Upload as typed…", self._release),
            ("delete", "Delete session…", self._delete),
            ("hold", "Hold", lambda: self._set_state("hold")),
            ("approve", "Approve", lambda: self._set_state("approve")),
        ]
        row = QHBoxLayout()
        for name, text, slot in actions:
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            self._buttons[name] = button
            row.addWidget(button)
            if name == "release":
                row.addStretch(1)
        self._buttons["release"].setToolTip(
            "Shaded text is removed from what is uploaded. If the detection the cursor is in "
            "is not personal data, release it to have it uploaded as typed."
        )
        refresh = QPushButton("Refresh")
        refresh.setObjectName("refresh")
        refresh.clicked.connect(self.refresh)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self._summary)
        detail_layout.addWidget(self.timeline)
        detail_layout.addWidget(self._range)
        detail_layout.addWidget(self.text, 1)
        detail_layout.addWidget(self._live)
        detail_layout.addLayout(row)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(1, 3)
        top = QHBoxLayout()
        top.addWidget(self._status, 1)
        top.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self._error)

        self.table.chosen.connect(self._choose)
        self.timeline.range_changed.connect(self._range_changed)
        self.text.selection_changed.connect(self._update_actions)
        self._fit_screen()
        self._show_detail(None)
        self.refresh()

    def _fit_screen(self) -> None:
        """1000x680 (fits a 1366x768 laptop with its panel and the title
        bar), and never more than the screen has room for."""
        room = self.screen().availableGeometry()
        self.resize(min(1000, room.width() - 40), min(680, room.height() - 60))

    def _label(self, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        return label

    # -- the list -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask for the sessions again (states change as hold periods pass)."""
        self._say("Loading sessions…")
        self._runner.call(lambda svc: svc.sessions(), self._show_sessions, self._fail, owner=self)

    def _show_sessions(self, rows: list[tuple[SessionInfo, int | None]]) -> None:
        self.table.show_sessions(rows)
        if not rows:
            self._say(f"{self._notice} No sessions left.".strip() if self._notice else "")
            self._notice = ""
            self.text.clear("No sessions yet: nothing has been recorded.")
        elif self._loading is None:
            self._say(self._notice)
            self._notice = ""
        self._show_summary()
        self._update_actions()

    def _choose(self, session_id: str | None) -> None:
        self._error.hide()
        if session_id is None:
            self._show_detail(None)
        elif self._review is None or self._review.info.id != session_id:
            self._load(session_id)
        self._update_actions()

    def _load(self, session_id: str) -> None:
        review = self._review
        same = review is not None and review.info.id == session_id
        self._stream = self.text.current_stream() if same else None  # a reload keeps the place
        self._loading = session_id
        self._show_detail(None, "Loading…")
        self._say("Loading…")
        self._runner.call(
            lambda svc: load(svc, session_id),
            lambda loaded: self._loaded(session_id, loaded),
            lambda message: self._load_failed(session_id, message),
            owner=self,
        )

    def _loaded(self, session_id: str, loaded: Loaded) -> None:
        if session_id != self._loading:
            return  # the person chose another session meanwhile
        self._loading = None
        self._show_detail(loaded)
        self._say(self._notice)
        self._notice = ""

    def _load_failed(self, session_id: str, message: str) -> None:
        if session_id == self._loading:  # else a later choice is still on its way
            self._loading = None
            self.text.clear("This session could not be opened.")
            self._fail(message)

    # -- the chosen session -----------------------------------------------------------------------

    def _show_detail(self, loaded: Loaded | None, message: str = "") -> None:
        self._review = None if loaded is None else loaded.review
        self.timeline.set_data(None if loaded is None else loaded.timeline)
        if loaded is None:
            self.text.clear(message or "Choose a session above to see what it holds.")
        else:
            review = loaded.review
            self.text.show_streams(review.streams, review.detections, self._stream, review.cuts)
        self._range_changed(None)
        self._show_summary()
        self._update_actions()

    def _show_summary(self) -> None:
        """The chosen session in one line, its state as the list last said it."""
        review = self._review
        if review is None:
            self._summary.setText("")
            return
        info, auto = self.table.entry(review.info.id) or (review.info, review.auto_approve_ns)
        self._summary.setText(summary_text(info, auto, len(review.redactions)))

    def _range_changed(self, chosen: tuple[int, int] | None) -> None:
        if self._review is None:
            self._range.setText("")
        elif chosen is None:
            self._range.setText("Drag across the timeline to choose a time range.")
        else:
            start, end = chosen
            self._range.setText(
                f"Chosen: {clock(start, seconds=True)} – {clock(end, seconds=True)}"
            )
        self._update_actions()

    def _update_actions(self) -> None:
        review, busy = self._review, self._busy
        chosen = self.table.selected_id()
        info = None if chosen is None else self.table.info(chosen)
        state = None if info is None else info.state
        editable = review is not None and not busy and state not in (None, SessionState.RECORDING)
        self._enable("redact_selection", editable and self.text.selected_span() is not None)
        self._enable("redact_range", editable and self.timeline.selected_range() is not None)
        self._enable("redact_pii", editable and review is not None and any(review.findings))
        at = self.text.detection_at_cursor()
        self._enable(
            "release", editable and state != SessionState.UPLOADED and bool(at and at.withheld)
        )
        settled = not busy and state not in (None, SessionState.RECORDING)
        self.table.setEnabled(not busy)  # no other session while a removal is under way
        self._enable("delete", settled)
        self._enable("approve", settled and state != SessionState.APPROVED)
        self._enable("hold", settled and state != SessionState.HELD)
        self._live.setVisible(not busy and state == SessionState.RECORDING)

    def _enable(self, name: str, on: bool) -> None:
        self._buttons[name].setEnabled(on)

    # -- removing: the dry run, the confirmation, the act --------------------------------------

    def _redact_selection(self) -> None:
        span = self.text.selected_span()
        if self._review is None or span is None:
            return
        sid, (number, start, end) = self._review.info.id, span
        self._dry_run(
            lambda svc: svc.select_span(sid, number, start, end),
            "Remove the selected text and every key press behind it?",
        )

    def _redact_range(self) -> None:
        chosen = self.timeline.selected_range()
        if self._review is None or chosen is None:
            return
        sid, (start, end) = self._review.info.id, chosen
        self._dry_run(
            lambda svc: svc.select_time(sid, start, end),
            f"Remove everything recorded from {clock(start, seconds=True)} "
            f"to {clock(end, seconds=True)}: keys, mouse, windows?",
        )

    def _redact_pii(self) -> None:
        if self._review is None:
            return
        sid = self._review.info.id
        self._dry_run(
            lambda svc: svc.select_pii(sid),
            "Remove everything detected as personal data or a secret, in every window?",
        )

    def _dry_run(self, choose: Callable[[Service], Selection], what: str) -> None:
        self._start("Working out what that would remove…")
        self._runner.call(choose, lambda sel: self._confirm(sel, what), self._fail, owner=self)

    def _confirm(self, selection: Selection, what: str) -> None:
        if self._review is None or self._review.info.id != selection.session_id:
            self._finish("")  # another session was chosen meanwhile
            return
        if selection.empty:
            self._finish("Nothing recorded there is left to remove.")
            return
        texts = [self.text.span_line(*span) for span in selection.spans]
        dialog = ConfirmDialog(
            self, what=what, counts=selection.counts, texts=texts, note=REDACT_NOTE
        )
        dialog.accepted.connect(lambda: self._redact(selection))
        dialog.rejected.connect(lambda: self._finish("Nothing was removed."))
        self._say("")
        dialog.open()

    def _redact(self, selection: Selection) -> None:
        self._say("Removing…")
        sid = selection.session_id
        self._runner.call(
            lambda svc: svc.redact(selection),
            lambda done: self._reload(sid, f"Removed {counts_text(done.removed)}."),
            self._fail,
            owner=self,
        )

    def _release(self) -> None:
        at = self.text.detection_at_cursor()
        if self._review is None or at is None or not at.withheld:
            return
        sid, number, f = self._review.info.id, at.stream, at.finding
        kind = f.category.value.replace("_", " ")
        self._start("")
        dialog = release_dialog(self, kind, self.text.span_line(number, f.start, f.end))
        dialog.accepted.connect(
            lambda: self._act(
                lambda svc: svc.release_detection(sid, number, f.start, f.end),
                f"Released: this {kind} is uploaded as typed.",
                sid,
            )
        )
        dialog.rejected.connect(lambda: self._finish("Nothing was released."))
        dialog.open()

    def _reload(self, session_id: str | None, notice: str) -> None:
        """After a change: the list as it now is, and the session shown again."""
        self._busy = False
        self._notice = notice
        self.refresh()
        if session_id is not None and self.table.selected_id() == session_id:
            self._load(session_id)

    def _delete(self) -> None:
        sid = self.table.selected_id()
        info = None if sid is None else self.table.info(sid)
        if sid is None or info is None:
            return
        self._start("")
        dialog = ConfirmDialog(
            self,
            what=(
                f"Delete the session started {day_and_clock(info.started_ns)}, "
                "with everything recorded in it?"
            ),
            counts=info.counts,
            note=DELETE_NOTE,
            ok_text="Delete",
        )
        dialog.accepted.connect(lambda: self._act(lambda svc: svc.delete(sid), "Deleted."))
        dialog.rejected.connect(lambda: self._finish("Nothing was deleted."))
        dialog.open()

    # -- approving and holding -----------------------------------------------------------------

    def _set_state(self, act: str) -> None:
        sid = self.table.selected_id()
        if sid is None:
            return
        self._start("")
        if act == "approve":
            self._act(lambda svc: svc.approve(sid), "Approved.")
        else:
            self._act(lambda svc: svc.hold(sid), "Held: it will not approve itself.")

    def _act(
        self, fn: Callable[[Service], object], notice: str, session_id: str | None = None
    ) -> None:
        """Change something, then show the list as it now is (and `session_id` again)."""
        self._say("Working…")
        self._runner.call(fn, lambda _: self._reload(session_id, notice), self._fail, owner=self)

    # -- progress and errors -------------------------------------------------------------------

    def _start(self, message: str) -> None:
        self._busy = True
        self._error.hide()
        self._say(message)
        self._update_actions()

    def _finish(self, message: str) -> None:
        self._busy = False
        self._say(message)
        self._update_actions()

    def _say(self, message: str) -> None:
        self._status.setText(message)

    def _fail(self, message: str) -> None:
        """An error from the service, as one line for the person (see `Runner.call`)."""
        self._busy = False
        self._say("")
        self._error.setText(message)
        self._error.show()
        self._update_actions()
