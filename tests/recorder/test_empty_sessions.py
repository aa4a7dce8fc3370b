"""A session in which nothing was typed, clicked or scrolled is not kept: it
is removed as a deletion is, and ledgered, whichever way it ended."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cleartrace.preferences import TESTING_SESSION_S
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, status, stored
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

NOT_KEPT = "nothing was typed, clicked or scrolled: the session was not kept"


def _move_mouse(rec: Recording, xdo: Callable[..., str]) -> None:
    for x in range(3):
        xdo("mousemove", str(100 + 40 * x), "200")
        # Input pacing, not a wait: moves are kept at most mouse_move_hz a second.
        time.sleep(0.05)
    wait_for(lambda: stored(rec.paths, "mouse_move") > 0, what="the mouse moves stored")


def _session_records() -> list[tuple[str, str]]:
    records = json.loads(ct("ledger", "show", "--json").stdout)
    return [(r["kind"], r["session"]) for r in records if r["kind"].startswith("session.")]


def _assert_removed_after_its_end(session_id: str, tmp_path: Path) -> None:
    mine = [kind for kind, sid in _session_records() if sid == session_id]
    assert mine == ["session.started", "session.ended", "session.deleted"]
    exported = tmp_path / "ledger.jsonl"
    ct("ledger", "export", "--out", str(exported))
    ct("audit", "verify", str(exported))


def test_a_session_with_only_mouse_moves_is_not_kept_and_its_removal_is_ledgered(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    rec = start_recorder()
    running = status(rec.paths)["session"]
    _move_mouse(rec, xdo)
    said = rec.stop()
    assert NOT_KEPT in said
    assert sessions() == []
    _assert_removed_after_its_end(running, tmp_path)


def test_one_key_keeps_the_session(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    ct("consent", "give", "--all")
    rec = start_recorder()
    _move_mouse(rec, xdo)
    xdo("type", "a")
    rec.wait_stored("keys", 2, what="the key stored")
    said = rec.stop()
    assert NOT_KEPT not in said
    (kept,) = sessions()
    assert kept["counts"]["keys"] == 2


def test_a_minimum_of_zero_keeps_a_mouse_only_session(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    ct("settings", "min-inputs", "0")
    ct("consent", "give", "--all")
    rec = start_recorder()
    _move_mouse(rec, xdo)
    rec.stop()
    (kept,) = sessions()
    assert kept["counts"]["mouse_move"] > 0


def test_a_higher_minimum_drops_a_session_with_fewer_inputs(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    tmp_path: Path,
) -> None:
    ct("settings", "min-inputs", "3")
    ct("consent", "give", "--all")
    rec = start_recorder()
    running = status(rec.paths)["session"]
    xdo("type", "--delay", "20", "ab")  # two presses (the releases do not count)
    rec.wait_stored("keys", 4, what="the keys stored")
    assert "the session was not kept" in rec.stop()
    assert sessions() == []
    _assert_removed_after_its_end(running, tmp_path)


def test_an_empty_session_ended_at_a_boundary_is_not_kept(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(TESTING_SESSION_S, "1.5")
    ct("consent", "give", "--all")
    rec = start_recorder()
    running = status(rec.paths)["session"]
    _move_mouse(rec, xdo)
    wait_for(lambda: status(rec.paths)["session"] != running, what="the boundary")
    wait_for(lambda: running in [s for _, s in _session_records()][-1:], what="its removal")
    assert running not in [s["id"] for s in sessions()]
    rec.stop()
    _assert_removed_after_its_end(running, tmp_path)


def test_end_current_of_an_empty_session_says_it_was_not_kept(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    rec = start_recorder()
    running = status(rec.paths)["session"]
    _move_mouse(rec, xdo)
    done = ct("sessions", "end-current")
    assert NOT_KEPT in done.stderr
    assert sessions() == []
    _assert_removed_after_its_end(running, tmp_path)
    rec.stop()
