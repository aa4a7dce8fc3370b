"""The review window on real widgets over a real service and store: list, timeline,
text with PII highlighted, redaction through a confirmation, approve, hold, delete."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QPlainTextEdit, QPushButton
from pytestqt.qtbot import QtBot

from cleartrace.actions.sessions import SessionReview
from cleartrace.categories import USUAL, PiiCategory
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.activity import MINUTE_NS, MinuteActivity
from cleartrace.service import Service
from cleartrace.ui.review import (
    CATEGORY_COLOURS,
    PII_COLOURS,
    ReviewWindow,
    Timeline,
    TimelineData,
)
from cleartrace.ui.review.sessions import COLUMNS
from cleartrace.ui.runner import Runner

T = TypeVar("T")
MS = 1_000_000
DAY_NS = 86_400 * 10**9
EMAIL = "anna.berg@example.org"


class OffGuiService(Service):
    """Fails the test if the GUI thread asks it anything (the runner's final close aside)."""

    def __getattribute__(self, name: str) -> Any:
        public = not name.startswith("_") and name not in ("close", "paths", "policy")
        if public and threading.current_thread() is threading.main_thread():
            raise AssertionError(f"Service.{name} was called on the GUI thread")
        return super().__getattribute__(name)


def typed(text: str, t0: int) -> list[RawEvent]:
    out: list[RawEvent] = []
    for i, ch in enumerate(text):
        code = keysym_of_char(ch)
        out.append((t0 + i * 100 * MS, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        out.append((t0 + i * 100 * MS + 50 * MS, int(Kind.KEY_UP), code, 0, 0, 0, None))
    return out


def record(paths: Paths, *periods: tuple[int, str, str]) -> str:
    """A closed session that began a while ago: per (offset in minutes, application,
    text) a focus change, the text typed, two mouse moves, a scroll and a click."""
    home = Home.open(paths, create=False)
    try:
        start = time.time_ns() - 10 * MINUTE_NS
        handle = home.store.begin_session(start, 0)
        for minutes, app, text in periods:
            t = minutes * MINUTE_NS
            batch: list[RawEvent] = [(t, int(Kind.FOCUS), 0, 0, 0, 0, (app, None))]
            batch += typed(text, t + MS)
            t += (len(text) + 1) * 100 * MS
            batch += [
                (t, int(Kind.MOVE), 5, 5, 0, 0, None),
                (t + MS, int(Kind.MOVE), 10, 10, 0, 0, None),
                (t + 2 * MS, int(Kind.SCROLL), 10, 10, 0, -1, None),
                (t + 3 * MS, int(Kind.BUTTON_DOWN), 10, 10, 1, 0, None),
                (t + 4 * MS, int(Kind.BUTTON_UP), 10, 10, 1, 0, None),
            ]
            home.store.append_chunk(handle, batch)
        home.store.end_session(handle, start + 8 * MINUTE_NS)
        return handle.id
    finally:
        home.close()


@pytest.fixture
def paths(private_home: Paths) -> Paths:
    """A home with consent to everything, given through the service (no display: no recorder)."""
    setup = Service(private_home, env={})
    try:
        setup.give(list(USUAL))
    finally:
        setup.close()
    return private_home


@pytest.fixture
def runner(qtbot: QtBot, paths: Paths) -> Iterator[Runner]:
    """Like tests/ui/conftest.py's, over a consented home and a service that fails
    the test if the GUI thread calls it."""
    runner = Runner(OffGuiService(paths, env={}))
    yield runner
    runner.stop()


def settle(qtbot: QtBot, runner: Runner) -> None:
    """Wait until every call made (and those its answers made) has been answered."""
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=15_000)


def ask(qtbot: QtBot, runner: Runner, fn: Callable[[Service], T]) -> T:
    """A service call from the test, through the runner like the window's own."""
    answers: list[Any] = []
    runner.call(fn, answers.append, lambda message: answers.append(AssertionError(message)))
    qtbot.waitUntil(lambda: bool(answers), timeout=15_000)
    if isinstance(answers[0], AssertionError):
        raise answers[0]
    result: T = answers[0]
    return result


def open_window(qtbot: QtBot, runner: Runner) -> ReviewWindow:
    window = ReviewWindow(runner)
    qtbot.addWidget(window)
    window.show()
    settle(qtbot, runner)
    return window


def choose(qtbot: QtBot, runner: Runner, window: ReviewWindow, session_id: str) -> None:
    window.table.select_id(session_id)
    settle(qtbot, runner)


def button(window: ReviewWindow, name: str) -> QPushButton:
    found = window.findChild(QPushButton, name)
    assert found is not None, name
    return found


def label(window: ReviewWindow, name: str) -> str:
    found = window.findChild(QLabel, name)
    assert found is not None, name
    return found.text()


def text_edit(window: ReviewWindow) -> QPlainTextEdit:
    found = window.findChild(QPlainTextEdit, "text")
    assert found is not None
    return found


def confirmation(qtbot: QtBot, window: ReviewWindow) -> QDialog:
    qtbot.waitUntil(lambda: window.findChild(QDialog, "confirm") is not None, timeout=15_000)
    dialog = window.findChild(QDialog, "confirm")
    assert dialog is not None
    assert dialog.isVisible()
    return dialog


def answer(qtbot: QtBot, runner: Runner, dialog: QDialog, name: str) -> None:
    choice = dialog.findChild(QPushButton, name)
    assert choice is not None
    qtbot.mouseClick(choice, Qt.MouseButton.LeftButton)
    settle(qtbot, runner)


def review_of(qtbot: QtBot, runner: Runner, session_id: str) -> SessionReview:
    return ask(qtbot, runner, lambda svc: svc.review(session_id))


def column(window: ReviewWindow, session_id: str, name: str) -> str:
    table = window.table
    row = table.session_ids().index(session_id)
    item = table.item(row, COLUMNS.index(name))
    assert item is not None
    return item.text()


def background(edit: QPlainTextEdit, position: int) -> QColor | None:
    """The background of the character at `position`, None if it has none."""
    cursor = QTextCursor(edit.document())
    cursor.setPosition(position + 1)  # a cursor reports the format of the character before it
    brush = cursor.charFormat().background()
    return None if brush.style() == Qt.BrushStyle.NoBrush else brush.color()


# -- the list ---------------------------------------------------------------------------------


def test_list_shows_each_session_with_its_state_and_when_it_approves_itself(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    pending = record(paths, (0, "Gedit", "hello"))
    held = record(paths, (0, "Xterm", "ls"))
    ask(qtbot, runner, lambda svc: svc.hold(held))

    window = open_window(qtbot, runner)

    assert sorted(window.table.session_ids()) == sorted([pending, held])
    (info, due) = next(row for row in ask(qtbot, runner, Service.sessions) if row[0].id == pending)
    assert due == info.ended_ns + DEFAULT_POLICY.hold_days * DAY_NS  # type: ignore[operator]
    when = datetime.fromtimestamp(due / 1e9).astimezone().strftime("%a %H:%M")
    assert column(window, pending, "State") == "pending"
    assert column(window, pending, "Approval") == f"approves itself on {when} unless held"
    assert column(window, pending, "Applications") == "Gedit"
    assert column(window, pending, "Counts") == (
        "keys 10 · moves 2 · clicks 2 · scrolls 1 · window changes 1"
    )
    assert column(window, pending, "Duration") == "8 min"
    assert column(window, held, "State") == "held"
    assert column(window, held, "Approval") == "held: never approves itself"


# -- the chosen session -------------------------------------------------------------------------


def test_choosing_a_session_loads_it_off_the_gui_thread_and_highlights_the_email(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    text = f"mail {EMAIL} today"
    sid = record(paths, (0, "Thunderbird", text), (1, "Xterm", "ls -l"))
    window = open_window(qtbot, runner)

    window.table.select_id(sid)
    assert label(window, "status") == "Loading…"  # asked, not yet answered: nothing blocks
    settle(qtbot, runner)

    streams = window.findChild(QListWidget, "streams")
    assert streams is not None
    assert [streams.item(r).text() for r in range(streams.count())] == [
        f"1. Thunderbird  ({len(text)} characters, 1 flagged)",
        "2. Xterm  (5 characters)",
    ]
    edit = text_edit(window)
    assert edit.toPlainText() == text
    start = text.index(EMAIL)
    colour = PII_COLOURS[PiiCategory.EMAIL]
    assert [background(edit, i) for i in range(start, start + len(EMAIL))] == [colour] * len(EMAIL)
    assert background(edit, start - 1) is None
    assert background(edit, start + len(EMAIL)) is None
    assert "email 1" in label(window, "legend")
    assert label(window, "status") == ""

    streams.setCurrentRow(1)
    assert edit.toPlainText() == "ls -l"
    assert "No personal data" in label(window, "legend")


def test_timeline_paints_each_category_from_the_minutes_alone(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    sid = record(paths, (0, "Gedit", "abc"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    timeline = window.timeline
    data = timeline.data()
    assert data is not None
    (minute,) = data.minutes
    assert (minute.keys, minute.moves, minute.clicks, minute.scrolls) == (3, 2, 1, 1)

    image = timeline.grab().toImage()
    x = round(timeline.x_for(data.first_ns + MINUTE_NS // 2))
    colours = {image.pixelColor(x, y).name() for y in range(30, image.height() - 22)}
    assert {c.name() for c in CATEGORY_COLOURS.values()} <= colours


def test_a_day_long_timeline_paints_quickly(qtbot: QtBot) -> None:
    """1,440 minutes are 1,440 columns, whatever the number of events behind them."""
    timeline = Timeline()
    qtbot.addWidget(timeline)
    timeline.resize(1200, 140)
    now = time.time_ns()
    minutes = tuple(
        MinuteActivity(m, keys=m % 90, moves=6000, clicks=m % 7, scrolls=m % 3, excluded=m < 30)
        for m in range(1440)
    )
    timeline.set_data(TimelineData(minutes, now, now, now + 1440 * MINUTE_NS, ((now, now),)))
    started = time.perf_counter()
    assert not timeline.grab().isNull()
    assert time.perf_counter() - started < 1.0


def test_a_time_range_can_be_chosen_with_the_keyboard_and_escape_clears_it(
    qtbot: QtBot,
) -> None:
    timeline = Timeline()
    qtbot.addWidget(timeline)
    now = time.time_ns()
    minutes = tuple(MinuteActivity(m, keys=5) for m in range(10))
    timeline.set_data(TimelineData(minutes, now, now, now + 10 * MINUTE_NS, ()))
    chosen: list[object] = []
    timeline.range_changed.connect(chosen.append)

    qtbot.keyClick(timeline, Qt.Key.Key_Right)
    qtbot.keyClick(timeline, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(timeline, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert timeline.selected_range() == (now + MINUTE_NS, now + 3 * MINUTE_NS)
    qtbot.keyClick(timeline, Qt.Key.Key_Escape)
    assert timeline.selected_range() is None
    assert chosen[-1] is None
    assert chosen[-2] == (now + MINUTE_NS, now + 3 * MINUTE_NS)


# -- removing -----------------------------------------------------------------------------------


def test_redacting_selected_text_asks_first_then_removes_its_key_presses(
    qtbot: QtBot, runner: Runner, paths: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sid = record(paths, (0, "Gedit", "hello"), (1, "Xterm", "my secret plan"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    streams = window.findChild(QListWidget, "streams")
    assert streams is not None
    streams.setCurrentRow(1)
    assert not button(window, "redact_selection").isEnabled()

    # Select "secret" with the keyboard, as a person would.
    edit = text_edit(window)
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    for _ in range(3):
        qtbot.keyClick(edit, Qt.Key.Key_Right)
    for _ in range(6):
        qtbot.keyClick(edit, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert window.text.selected_span() == (2, 3, 9)
    qtbot.mouseClick(button(window, "redact_selection"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)

    dialog = confirmation(qtbot, window)
    counts = dialog.findChild(QLabel, "confirm_counts")
    shown = dialog.findChild(QPlainTextEdit, "confirm_text")
    assert counts is not None
    assert shown is not None
    assert counts.text() == "Events that will be removed: keys 12"
    assert shown.toPlainText() == "2. Xterm: secret"
    answer(qtbot, runner, dialog, "confirm_ok")

    after = review_of(qtbot, runner, sid)
    assert [s.text for s in after.streams] == ["hello", "my  plan"]
    assert [r.removed for r in after.redactions] == [{"keys": 12}]
    assert edit.toPlainText() == "my  plan"  # the window reloaded, on the same window's text
    assert label(window, "status") == "Removed keys 12."
    records = ask(qtbot, runner, lambda svc: svc.ledger()).records
    assert records[-1]["kind"] == "session.redacted"
    assert records[-1]["events"] == 12
    assert not any("secret" in r.getMessage() for r in caplog.records)


def test_cancelling_the_confirmation_changes_nothing(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    sid = record(paths, (0, "Gedit", "keep every word"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    window.text.select_span(1, 5, 10)
    qtbot.mouseClick(button(window, "redact_selection"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)

    answer(qtbot, runner, confirmation(qtbot, window), "confirm_cancel")

    qtbot.waitUntil(lambda: window.findChild(QDialog, "confirm") is None)
    after = review_of(qtbot, runner, sid)
    assert [s.text for s in after.streams] == ["keep every word"]
    assert after.redactions == []
    kinds = [r["kind"] for r in ask(qtbot, runner, lambda svc: svc.ledger()).records]
    assert "session.redacted" not in kinds
    assert label(window, "status") == "Nothing was removed."
    assert button(window, "redact_selection").isEnabled()


def test_a_range_dragged_on_the_timeline_removes_every_category_in_it(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    sid = record(paths, (0, "Gedit", "early"), (3, "Xterm", "later"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    timeline = window.timeline
    data = timeline.data()
    assert data is not None
    y = timeline.height() // 2
    left, right = QPoint(1, y), QPoint(round(timeline.x_for(data.first_ns + 2 * MINUTE_NS)), y)

    qtbot.mousePress(timeline, Qt.MouseButton.LeftButton, pos=left)
    qtbot.mouseMove(timeline, QPoint((left.x() + right.x()) // 2, y))
    qtbot.mouseRelease(timeline, Qt.MouseButton.LeftButton, pos=right)
    chosen = timeline.selected_range()
    assert chosen is not None
    assert chosen[0] == data.start_ns
    assert data.first_ns + MINUTE_NS < chosen[1] < data.first_ns + 3 * MINUTE_NS
    assert label(window, "range").startswith("Chosen: ")
    qtbot.mouseClick(button(window, "redact_range"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)

    dialog = confirmation(qtbot, window)
    counts = dialog.findChild(QLabel, "confirm_counts")
    assert counts is not None
    assert counts.text() == (
        "Events that will be removed: keys 10 · moves 2 · clicks 2 · scrolls 1 · window changes 1"
    )
    answer(qtbot, runner, dialog, "confirm_ok")

    after = review_of(qtbot, runner, sid)
    assert [s.text for s in after.streams] == ["later"]
    assert after.info.counts == {
        "app_focus": 1,
        "clicks": 2,
        "keys": 10,
        "mouse_move": 2,
        "scroll": 1,
    }
    assert [r.method for r in after.redactions] == ["time"]
    assert timeline.data() is not None
    assert timeline.data().redacted  # type: ignore[union-attr]  # hatched from now on
    assert timeline.selected_range() is None


def test_redacting_all_detected_pii_removes_the_email(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    sid = record(paths, (0, "Thunderbird", f"to {EMAIL} ok"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    qtbot.mouseClick(button(window, "redact_pii"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)

    dialog = confirmation(qtbot, window)
    shown = dialog.findChild(QPlainTextEdit, "confirm_text")
    assert shown is not None
    assert shown.toPlainText() == f"1. Thunderbird: {EMAIL}"
    answer(qtbot, runner, dialog, "confirm_ok")

    after = review_of(qtbot, runner, sid)
    assert [s.text for s in after.streams] == ["to  ok"]
    assert after.findings == [[]]
    assert text_edit(window).toPlainText() == "to  ok"
    assert not button(window, "redact_pii").isEnabled()  # nothing detected is left


# -- approving, holding, deleting ---------------------------------------------------------------


def test_approve_and_hold_change_the_state_shown(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    sid = record(paths, (0, "Gedit", "hello"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)

    qtbot.mouseClick(button(window, "approve"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)
    assert column(window, sid, "State") == "approved"
    assert label(window, "summary").endswith(" · approved")
    assert not button(window, "approve").isEnabled()
    assert window.table.selected_id() == sid

    qtbot.mouseClick(button(window, "hold"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)
    assert column(window, sid, "State") == "held"
    assert column(window, sid, "Approval") == "held: never approves itself"
    assert label(window, "status") == "Held: it will not approve itself."
    kinds = [r["kind"] for r in ask(qtbot, runner, lambda svc: svc.ledger()).records]
    assert kinds[-2:] == ["session.approved", "session.held"]


def test_delete_asks_then_removes_the_session_from_the_list(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    keep = record(paths, (0, "Gedit", "keep"))
    gone = record(paths, (0, "Xterm", "gone"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, gone)

    qtbot.mouseClick(button(window, "delete"), Qt.MouseButton.LeftButton)
    dialog = confirmation(qtbot, window)
    counts = dialog.findChild(QLabel, "confirm_counts")
    assert counts is not None
    assert "keys 8" in counts.text()
    answer(qtbot, runner, dialog, "confirm_ok")

    assert window.table.session_ids() == [keep]
    assert window.table.selected_id() is None
    assert text_edit(window).toPlainText() == ""
    assert not button(window, "delete").isEnabled()
    sessions = ask(qtbot, runner, Service.sessions)
    assert [info.id for info, _ in sessions] == [keep]


def test_a_service_error_is_shown_inline(qtbot: QtBot, runner: Runner, paths: Paths) -> None:
    sid = record(paths, (0, "Gedit", "hello"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    ask(qtbot, runner, lambda svc: svc.delete(sid))  # gone behind the window's back

    qtbot.mouseClick(button(window, "approve"), Qt.MouseButton.LeftButton)
    settle(qtbot, runner)

    error = window.findChild(QLabel, "error")
    assert error is not None
    assert error.isVisible()
    assert sid[:8] in error.text()
    assert "Traceback" not in error.text()
    assert button(window, "approve").isEnabled()  # the window stays usable


def test_the_window_fits_a_1366_by_768_screen_with_a_session_open(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    # A common laptop screen, less a 32-pixel panel and the title bar: the
    # window opens no larger and can be made no larger than what is there.
    sid = record(paths, (0, "Thunderbird", f"mail {EMAIL} today"), (1, "Xterm", "ls -l"))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    usable = (1366, 768 - 32 - 30)
    assert window.width() <= usable[0]
    assert window.height() <= usable[1]
    least = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert least.width() <= usable[0]
    assert least.height() <= usable[1]


def underline(edit: QPlainTextEdit, position: int) -> QTextCharFormat.UnderlineStyle:
    cursor = QTextCursor(edit.document())
    cursor.setPosition(position + 1)
    return cursor.charFormat().underlineStyle()


def test_where_text_was_removed_is_marked_in_the_text(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    # Two redactions of the person's own: the text shows where something went,
    # never what (it is gone), and the note says how many places.
    sid = record(paths, (0, "Gedit", "hello secret world"), (1, "Xterm", "ls -l"))
    for start, end in ((6, 13), (0, 1)):
        stream_one = ask(qtbot, runner, lambda svc: svc.review(sid)).streams[0].text
        assert len(stream_one) > end
        selection = ask(qtbot, runner, lambda svc, s=start, e=end: svc.select_span(sid, 1, s, e))
        ask(qtbot, runner, lambda svc, sel=selection: svc.redact(sel))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    edit = text_edit(window)
    assert edit.toPlainText() == "ello world"
    wave = QTextCharFormat.UnderlineStyle.WaveUnderline
    marked = [i for i in range(len("ello world")) if underline(edit, i) == wave]
    assert marked == [0, 5]  # the characters right after each cut
    assert "Removed by you: text at 2 places" in label(window, "marks")
    streams = window.findChild(QListWidget, "streams")
    assert streams is not None
    streams.setCurrentRow(1)  # the other window: nothing was removed there
    assert edit.toPlainText() == "ls -l"
    assert not [i for i in range(5) if underline(edit, i) == wave]
    assert "Removed" not in label(window, "marks")


def test_a_detection_the_person_says_is_not_personal_data_is_released_for_upload(
    qtbot: QtBot, runner: Runner, paths: Paths
) -> None:
    phone = "+49 30 12345678"
    text = f"to {EMAIL} or call {phone} ok"
    sid = record(paths, (0, "Thunderbird", text))
    window = open_window(qtbot, runner)
    choose(qtbot, runner, window, sid)
    edit = text_edit(window)
    assert "Shaded: removed from what is uploaded (2)" in label(window, "legend")
    release = button(window, "release")
    assert not release.isEnabled()  # the cursor is in no detection
    cursor = edit.textCursor()
    cursor.setPosition(text.index(phone) + 3)
    edit.setTextCursor(cursor)
    assert release.isEnabled()
    qtbot.mouseClick(release, Qt.MouseButton.LeftButton)

    dialog = confirmation(qtbot, window)
    assert dialog.windowTitle() == "ClearTrace — release a detection"
    shown = dialog.findChild(QPlainTextEdit, "confirm_text")
    assert shown is not None
    assert shown.toPlainText() == f"1. Thunderbird: {phone}"
    answer(qtbot, runner, dialog, "confirm_ok")

    after = review_of(qtbot, runner, sid)
    assert [(d.finding.category, d.withheld) for d in after.detections[0]] == [
        (PiiCategory.EMAIL, True),
        (PiiCategory.PHONE, False),
    ]
    settle(qtbot, runner)
    at = text.index(phone)
    assert [background(edit, i) for i in range(at, at + len(phone))] == [None] * len(phone)
    dashed = QTextCharFormat.UnderlineStyle.DashUnderline
    assert all(underline(edit, i) == dashed for i in range(at, at + len(phone)))
    assert "Underlined: uploaded as typed (1)" in label(window, "legend")
    assert "uploaded as typed" in label(window, "status")
    cursor = edit.textCursor()
    cursor.setPosition(at + 3)
    edit.setTextCursor(cursor)
    assert not release.isEnabled()  # released already
    home = Home.open(paths, create=False)
    try:
        kinds = [r["kind"] for r in home.ledger.records()]
    finally:
        home.close()
    assert kinds.count("detection.released") == 1
