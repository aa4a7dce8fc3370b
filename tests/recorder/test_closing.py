"""Closing a session (its compaction) while the recorder goes on: status and
the control socket answer meanwhile, and what was typed is all kept."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from typing import Any

import pytest

from cleartrace.control import request
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, show_text, status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver


def test_status_answers_while_a_session_is_being_closed(
    start_recorder: Callable[[], Recording], xdo: Callable[..., str], typing_window: str
) -> None:
    """The store is held by another writer (as a long compaction would hold
    the recorder), so closing the session ended on request waits: status
    must answer meanwhile, from the recorder and over the control socket."""
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "kept")
    rec.wait_stored("keys", 8, "the keys typed")
    (recording,) = sessions()
    ended: list[dict[str, Any]] = []
    with closing(sqlite3.connect(rec.paths.db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the store's write lock, taken from outside
        # What `cleartrace sessions end` sends, once it has opened the home.
        end = lambda: ended.append(request(rec.paths.socket, "end", timeout=60))  # noqa: E731
        ender = threading.Thread(target=end)
        ender.start()
        # The session is detached at once; closing it waits for the lock.
        wait_for(lambda: status(rec.paths)["session"] is None, what="the session detached")
        assert status(rec.paths)["state"] == "recording"
        assert ended == []
        other.execute("ROLLBACK")
    ender.join(timeout=60)
    assert ended[0]["ended"] == recording["id"]
    (closed,) = sessions()
    assert closed["id"] == recording["id"]
    assert closed["state"] == "pending"
    assert show_text(closed["id"]) == "kept"
    rec.stop()
