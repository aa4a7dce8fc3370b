"""My consent history: one row per ledger record, in words, and its verification."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QTableWidget
from pytestqt.qtbot import QtBot

from cleartrace.categories import USUAL, Category
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.history import HistoryWindow, describe_record
from cleartrace.ui.runner import Runner
from cleartrace.ui.texts import local_time


@pytest.fixture
def history(qtbot: QtBot, runner: Runner) -> HistoryWindow:
    window = HistoryWindow(runner)
    qtbot.addWidget(window)
    return window


def banner(window: HistoryWindow) -> str:
    label = window.findChild(QLabel, "banner")
    assert label is not None
    return label.text()


def rows(window: HistoryWindow) -> list[list[str]]:
    table = window.findChild(QTableWidget, "records")
    assert table is not None
    out = []
    for r in range(table.rowCount()):
        items = [table.item(r, c) for c in range(table.columnCount())]
        out.append([item.text() if item is not None else "" for item in items])
    return out


def some_history(service: Service) -> None:
    service.give([Category.KEYS, Category.CLICKS])
    service.refuse([Category.SCROLL])
    service.exclude("Firefox")
    service.withdraw([Category.CLICKS])


def test_one_row_per_record_in_words_and_verified(
    history: HistoryWindow, service: Service, settle: Callable[[], None]
) -> None:
    some_history(service)
    device = service.home().ledger.device
    history.show()
    settle()
    assert rows(history) == [
        ["1", rows(history)[0][1], "Consent given: keys you press, mouse clicks", "consent.given"],
        ["2", rows(history)[1][1], "Consent refused: scrolling", "consent.refused"],
        [
            "3",
            rows(history)[2][1],
            "Exclusion added: an application of yours is never recorded",
            "app.excluded",
        ],
        ["4", rows(history)[3][1], "Consent withdrawn: mouse clicks", "consent.withdrawn"],
    ]
    assert rows(history)[0][1].startswith(str(datetime.now().year))
    assert banner(history) == f"Verified: 4 records, signed by this device ({device})"
    assert device.startswith("sha256:")


def test_a_tampered_record_shows_where_the_ledger_breaks(
    history: HistoryWindow, service: Service, private_home: Paths, settle: Callable[[], None]
) -> None:
    some_history(service)
    with sqlite3.connect(private_home.db) as conn:
        (text,) = conn.execute("SELECT record FROM ledger WHERE seq=2").fetchone()
        record = json.loads(text)
        record["categories"] = ["keys"]  # "I never refused scroll, I refused keys"
        conn.execute("UPDATE ledger SET record=? WHERE seq=2", (json.dumps(record),))
    conn.close()
    history.show()
    settle()
    assert banner(history).startswith("Broken at record 2: signature does not verify")
    assert len(rows(history)) == 4  # still shown, for the person to see
    assert rows(history)[1][2] == "Consent refused: keys you press"


def test_refresh_shows_new_records(
    qtbot: QtBot, history: HistoryWindow, service: Service, settle: Callable[[], None]
) -> None:
    history.show()
    settle()
    assert rows(history) == []
    assert banner(history).startswith("Nothing recorded yet")
    service.refuse(list(USUAL))
    refresh = history.findChild(QPushButton, "refresh")
    assert refresh is not None
    qtbot.mouseClick(refresh, Qt.MouseButton.LeftButton)
    settle()
    assert [r[3] for r in rows(history)] == ["consent.refused"]
    assert banner(history).startswith("Verified: 1 record, signed")


SID = "5d1c" + "0" * 28


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (
            {"kind": "consent.given", "categories": ["clicks", "keys"]},
            "Consent given: keys you press, mouse clicks",
        ),
        (
            {"kind": "consent.withdrawn", "categories": ["window_titles", "app_focus"]},
            "Consent withdrawn: application in front, window titles",
        ),
        ({"kind": "recording.paused", "until": None}, "Paused until you resume"),
        ({"kind": "recording.resumed", "reason": "person"}, "Resumed by you"),
        ({"kind": "recording.resumed", "reason": "timer"}, "Resumed when the pause ended"),
        (
            {"kind": "exclusion.removed", "app": "firefox"},
            "Exclusion removed: firefox may be recorded again",
        ),
        (
            {"kind": "app.included", "app_tag": "a5" * 32},
            "Exclusion removed: an application may be recorded again",
        ),
        ({"kind": "session.started", "session": SID}, "Session 5d1c… started"),
        ({"kind": "session.deleted", "session": SID}, "Session 5d1c… deleted"),
        (
            {"kind": "session.redacted", "session": SID, "method": "pii", "events": 12},
            "Session 5d1c… redacted: detected personal data removed (12 events)",
        ),
        (
            {"kind": "session.redacted", "session": SID, "method": "forget", "events": 1},
            "Session 5d1c… redacted: the last minutes forgotten (1 event)",
        ),
        (
            {"kind": "session.shredded", "session": SID},
            "Session 5d1c… removed from this computer: uploaded, and its time here was up",
        ),
        (
            {"kind": "bundle.uploaded", "bundle": "ab12" * 16, "witnessed": {"seq": 7}},
            "Uploaded to your organisation (bundle ab12ab12…)",
        ),
        (
            {"kind": "bundle.uploaded", "bundle": "ab12" * 16, "timing": "even"},
            "Uploaded to your organisation (bundle ab12ab12…), your typing rhythm evened out",
        ),
        (
            {"kind": "bundle.uploaded", "bundle": "ab12" * 16, "timing": "raw"},
            "Uploaded to your organisation (bundle ab12ab12…), with your typing rhythm as typed",
        ),
        (
            {"kind": "device.enrolled", "policy": {"id": "acme", "version": 2}},
            "Enrolled with your organisation under its policy 'acme' version 2",
        ),
        ({"kind": "key.rotated"}, "Master key replaced: a copy of the old one opens nothing"),
        (
            {"kind": "ledger.rollback", "witnessed": {"seq": 9}, "local": {"seq": 4}},
            "Uploads stopped: the collector has seen record 9 of this history, this computer "
            "only 4 (restored from an old backup?); ask your privacy officer",
        ),
        (
            {"kind": "session.approved", "session": SID, "by": "hold_period"},
            "Session 5d1c… approved when its hold period ended",
        ),
        (
            {"kind": "session.held", "session": SID},
            "Session 5d1c… held back: it never leaves on its own",
        ),
        ({"kind": "future.thing"}, "A 'future.thing' record (written by a newer ClearTrace)"),
        ({"kind": "bundle.uploaded"}, "A 'bundle.uploaded' record whose details cannot be read"),
        ({"kind": "consent.given"}, "A 'consent.given' record whose details cannot be read"),
    ],
)
def test_records_in_words(record: dict[str, object], words: str) -> None:
    assert describe_record(record) == words


def test_a_pause_shows_its_end_in_local_time() -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15)
    text = describe_record(
        {"kind": "recording.paused", "until": until.isoformat().replace("+00:00", "Z")}
    )
    assert text.startswith("Paused until ")
    assert text.endswith(until.astimezone().strftime("%H:%M"))  # a date only across midnight
    assert local_time("not a time") == "not a time"
