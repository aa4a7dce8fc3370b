"""Session boundaries on a real X server: a recorder that runs all day ends its
session every so often and after a spell without input, and on request, so
that what came before can be reviewed; nothing typed is lost or doubled."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from Xlib import X
from Xlib.display import Display

from cleartrace.preferences import TESTING_IDLE_S, TESTING_SESSION_S
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, show_text, status
from tests.support.session_bus import StandInScreenSaver
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

# Lower-case letters and spaces only: no Shift, so each character is one key.
TEXT = " ".join(f"w{n:03d}x" for n in range(60))


def _texts() -> list[str]:
    return [show_text(s["id"]) for s in sorted(sessions(), key=lambda s: s["start"])]


def _ledgered(kind: str) -> list[str]:
    records = json.loads(ct("ledger", "show", "--json").stdout)
    return [r["session"] for r in records if r["kind"] == kind]


def test_text_typed_across_session_boundaries_is_kept_once_in_order(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TESTING_SESSION_S, "1.5")
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    # 360 characters 20 ms apart: over seven seconds, so several boundaries.
    xdo("type", "--delay", "20", TEXT)
    wait_for(lambda: "".join(_texts()) == TEXT, what="every key stored", timeout=30)
    rec.stop()
    listed = sessions()
    assert len([s for s in listed if s["counts"].get("keys")]) >= 3
    assert "".join(_texts()) == TEXT
    ids = {s["id"] for s in listed}
    assert set(_ledgered("session.started")) == ids
    assert sorted(_ledgered("session.ended")) == sorted(ids)
    assert {s["state"] for s in listed} == {"pending"}


def test_a_session_that_has_run_its_length_waits_for_input_before_the_next(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TESTING_SESSION_S, "2")
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "one")
    wait_for(lambda: _texts() == ["one"], what="the first session")
    wait_for(lambda: status(rec.paths)["session"] is None, what="its end")
    xdo("type", "--delay", "20", "two")
    wait_for(lambda: _texts() == ["one", "two"], what="the next session, and no empty one")
    rec.stop()
    assert _texts() == ["one", "two"]


def test_after_a_spell_without_input_the_next_input_starts_a_new_session(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TESTING_IDLE_S, "1")
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "before")
    wait_for(lambda: status(rec.paths)["session"] is None, what="the idle boundary")
    (first,) = sessions()
    assert first["state"] == "pending"
    assert show_text(first["id"]) == "before"
    xdo("type", "--delay", "20", "after")
    wait_for(lambda: len(sessions()) == 2, what="a session started by the next input")
    wait_for(lambda: _texts() == ["before", "after"], what="the text after the spell")
    rec.stop()
    assert len(_ledgered("session.started")) == len(_ledgered("session.ended")) == 2


def test_end_current_closes_the_session_being_recorded_for_review(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "first")
    rec.wait_stored("keys", 2 * len("first"), what="the keys stored")
    running = status(rec.paths)["session"]
    listed = ct("sessions", "list").stdout
    assert "being recorded" in listed
    assert "sessions end-current" in listed
    shown = ct("sessions", "show", running).stdout
    assert "being recorded" in shown
    assert "sessions end-current" in shown
    for act in ("approve", "delete"):
        refused = ct("sessions", act, running, check=False)
        assert refused.returncode == 2
        assert "still being recorded" in refused.stderr
        assert "cleartrace sessions end-current" in refused.stderr
    done = ct("sessions", "end-current")
    assert running[:12] in done.stdout + done.stderr
    (ended,) = sessions()
    assert ended["id"] == running
    assert ended["state"] == "pending"
    assert status(rec.paths)["session"] is None
    again = ct("sessions", "end-current", check=False)
    assert again.returncode == 0
    assert "no session is being recorded" in again.stderr
    xdo("type", "--delay", "20", "second")
    wait_for(lambda: _texts() == ["first", "second"], what="the next session")
    rec.stop()


def _screen_saver(active: bool) -> None:
    """Turn the X screen saver on or off, as a screen locker does."""
    shown = Display()
    try:
        shown.force_screen_saver(X.ScreenSaverActive if active else X.ScreenSaverReset)
        shown.sync()
    finally:
        shown.close()


def test_a_locked_screen_ends_the_session_and_what_is_typed_at_the_locker_is_never_kept(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[..., str],
    typing_window: str,
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "before")
    rec.wait_stored("keys", 2 * len("before"), what="the keys stored")
    # A locker as xss-lock starts one: the screen saver on, the keyboard grabbed.
    locker = app_window("i3lock", "locked", extra=("--grab-root",), focus=False)
    _screen_saver(True)
    wait_for(lambda: status(rec.paths)["screen_locked"], what="the lock seen")
    assert status(rec.paths)["session"] is None
    # Typed at a person's pace: the X server turns its saver off at the first
    # key, long before the password is complete; the locker stays until then.
    xdo("type", "--delay", "120", "unlockpassword")
    xdo("windowkill", locker)  # the password was right: the locker goes
    xdo("windowfocus", "--sync", typing_window)
    xdo("type", "--delay", "20", "after")
    wait_for(lambda: [t for t in _texts() if t] == ["before", "after"], what="the text after")
    rec.stop()
    assert [t for t in _texts() if t] == ["before", "after"]


def test_a_lock_said_on_the_session_bus_ends_the_session_and_the_next_input_begins_one(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    typing_window: str,
    screensaver: StandInScreenSaver,
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "before")
    rec.wait_stored("keys", 2 * len("before"), what="the keys stored")
    first = status(rec.paths)["session"]
    assert first is not None
    screensaver.lock()  # ActiveChanged(true), as GNOME's or KDE's locker says it
    wait_for(lambda: status(rec.paths)["screen_locked"], what="the lock seen")
    assert status(rec.paths)["session"] is None
    assert _ledgered("session.ended") == [first]
    screensaver.unlock()
    wait_for(lambda: not status(rec.paths)["screen_locked"], what="the unlock seen")
    xdo("type", "--delay", "20", "after")
    wait_for(lambda: [t for t in _texts() if t] == ["before", "after"], what="the text after")
    rec.stop()
    assert len(_ledgered("session.started")) == 2
