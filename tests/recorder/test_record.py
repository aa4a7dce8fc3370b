"""The recorder end to end on a real X server: xdotool in, `cleartrace` out."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from cleartrace.capture.base import HOOK_NAMES
from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, show_text, status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

CANARY = "zqxcanary"
TITLE_CANARY = "Wqtitlecanary"
# Down and up for each key of "Hello, World 42", Return, "abx", BackSpace and
# "c", and for the two Shifts that capitals are typed with.
KEYS_TYPED = 2 * (len("Hello, World 42") + 1 + 3 + 1 + 1) + 2 * 2


def test_typed_text_and_mouse_activity_come_back_from_the_store(
    start_recorder: Callable[[], Recording], xdo: Callable[..., str], typing_window: str
) -> None:
    ct("consent", "give", "--all")
    rec = start_recorder()
    assert rec.hooks() == list(HOOK_NAMES)  # every category: every hook, in order
    xdo("type", "--delay", "20", "Hello, World 42")
    xdo("key", "Return")
    xdo("type", "--delay", "20", "abx")
    xdo("key", "BackSpace")
    xdo("type", "--delay", "20", "c")
    for x in range(5):
        xdo("mousemove", str(100 + 40 * x), "200")
        # Input pacing, not a wait: moves are kept at most mouse_move_hz times a
        # second, so moves this far apart are each kept.
        time.sleep(0.02)
    xdo("click", "1")
    xdo("click", "3")
    xdo("click", "4")
    xdo("click", "5")
    rec.wait_stored("keys", KEYS_TYPED, what="the keys stored")
    rec.wait_stored("clicks", 4, what="the clicks stored")
    rec.wait_stored("scroll", 2, what="the scrolls stored")
    rec.stop()
    (session,) = sessions()
    assert session["state"] == "pending"
    assert show_text(session["id"]) == "Hello, World 42\nabc"
    counts = session["counts"]
    assert counts["clicks"] == 4  # two buttons, down and up
    assert counts["scroll"] == 2
    assert counts["mouse_move"] >= 5
    assert counts["keys"] == KEYS_TYPED


def test_nothing_is_recorded_without_consent(private_home: Paths, xserver: Any) -> None:
    done = ct("record", "--duration", "1s", check=False)
    assert done.returncode == 2
    assert "consent give" in done.stderr
    assert "Traceback" not in done.stderr


def test_only_consented_categories_get_hooks_and_data(
    start_recorder: Callable[[], Recording], xdo: Callable[..., str], typing_window: str
) -> None:
    ct("consent", "give", "--category", "clicks")
    rec = start_recorder()
    assert sorted(rec.hooks()) == ["focus", "mouse.click"]
    xdo("type", "--delay", "10", "secret")
    xdo("mousemove", "300", "300")
    # The scroll comes before the click on the same hook: once the click is
    # stored, a scroll that was wrongly kept would have been stored too.
    xdo("click", "5")
    xdo("click", "1")
    rec.wait_stored("clicks", 2, what="the click stored")
    rec.stop()
    (session,) = sessions()
    assert session["counts"].get("clicks") == 2
    for category in ("keys", "mouse_move", "scroll", "app_focus"):
        assert session["counts"].get(category, 0) == 0, category


def test_pause_removes_hooks_and_stores_nothing_and_resume_reinstalls(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    private_home: Paths,
    typing_window: str,
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "20", "one")
    rec.wait_stored("keys", 6, what="'one' stored")
    ct("pause")
    assert rec.hooks() == []
    assert status(private_home)["state"] == "paused"
    xdo("type", "--delay", "20", "two")  # no hook: nothing can arrive
    ct("resume")
    assert "keyboard" in rec.hooks()
    xdo("type", "--delay", "20", "three")
    # 'two' wrongly kept would reach this count too; the text below tells.
    rec.wait_stored("keys", 6 + 10, what="'three' stored")
    rec.stop()
    (session,) = sessions()
    assert show_text(session["id"]) == "onethree"
    kinds = [r["kind"] for r in json.loads(ct("ledger", "show", "--json").stdout)]
    assert "recording.paused" in kinds
    assert "recording.resumed" in kinds


def test_timed_pause_resumes_by_itself(
    start_recorder: Callable[[], Recording], private_home: Paths
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    ct("pause", "--for", "1s")
    assert status(private_home)["paused_until"] is not None
    wait_for(lambda: status(private_home)["state"] == "recording", timeout=5, what="auto resume")
    assert "keyboard" in rec.hooks()
    rec.stop()


def test_withdrawal_removes_hooks_within_a_second_and_stops_capture(
    start_recorder: Callable[[], Recording], xdo: Callable[..., str], typing_window: str
) -> None:
    ct("consent", "give", "--category", "keys", "--category", "mouse_move")
    rec = start_recorder()
    xdo("type", "--delay", "20", "before")
    rec.wait_stored("keys", 12, what="'before' stored")
    t0 = time.monotonic()
    ct("consent", "withdraw", "--category", "keys")
    wait_for(lambda: "keyboard" not in rec.hooks(), timeout=1.0, what="keyboard hook removed")
    assert time.monotonic() - t0 < 3.0  # includes the CLI's own start-up
    xdo("type", "--delay", "20", "after")
    # Nothing is expected now, so there is no count to wait on: the pause is
    # the time a key wrongly kept would take to be stored.
    time.sleep(0.4)
    assert "mouse.move" in rec.hooks()
    rec.stop()
    (session,) = sessions()
    assert show_text(session["id"]) == "before"


def test_excluded_application_records_nothing_but_a_marker(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[[str, str], str],
    wm: Any,
    private_home: Paths,
) -> None:
    ct("consent", "give", "--all")
    editor = app_window("Gedit", "notes")
    vault = app_window("KeePassXC", "Passwords.kdbx")
    xdo("windowactivate", "--sync", editor)
    rec = start_recorder()
    wait_for(lambda: status(private_home)["application"] == "Gedit", what="editor focus")
    xdo("type", "--delay", "20", "visible")
    # Keys typed within LAG_MS (0.1 s) before a switch into an excluded window
    # are not kept (they may have reached it); let 'visible' be stored first.
    rec.wait_stored("keys", 14, what="'visible' kept")
    xdo("windowactivate", "--sync", vault)
    wait_for(lambda: status(private_home)["excluded_now"], what="vault excluded")
    xdo("type", "--delay", "20", "hunter2")
    xdo("windowactivate", "--sync", editor)
    wait_for(lambda: not status(private_home)["excluded_now"], what="back from vault")
    xdo("type", "--delay", "20", "again")
    rec.wait_stored("keys", 14 + 10, what="'again' stored")
    rec.stop()
    (session,) = sessions()
    assert show_text(session["id"]) == "visibleagain"
    assert session["counts"]["excluded_intervals"] == 1
    assert "KeePassXC" not in session["applications"]
    assert "Gedit" in session["applications"]


def test_typed_canary_and_title_are_in_no_file_under_home(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[[str, str], str],
    wm: Any,
    private_home: Paths,
) -> None:
    ct("consent", "give", "--all")
    win = app_window("Xterm", f"{TITLE_CANARY} - shell")
    rec = start_recorder()
    xdo("windowactivate", "--sync", win)
    wait_for(lambda: status(private_home)["application"] == "Xterm", what="the shell's focus")
    xdo("type", "--delay", "10", CANARY)
    rec.wait_stored("keys", 2 * len(CANARY), what="the canary stored")
    files = {p: p.read_bytes() for p in private_home.home.rglob("*") if p.is_file()}
    rec.stop()
    files.update({p: p.read_bytes() for p in private_home.home.rglob("*") if p.is_file()})
    assert private_home.db in files
    assert private_home.log in files
    for secret in (CANARY, TITLE_CANARY):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            needle = secret.encode(encoding)
            hits = [str(p) for p, data in files.items() if needle in data]
            assert hits == [], f"{secret!r} found in plaintext ({encoding}): {hits}"
    (session,) = sessions()
    assert CANARY in show_text(session["id"])  # it was captured, only encrypted


def test_kill_9_loses_at_most_the_last_flush(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    private_home: Paths,
    typing_window: str,
) -> None:
    ct("consent", "give", "--category", "keys")
    rec = start_recorder()
    xdo("type", "--delay", "10", "durable")
    rec.wait_stored("keys", 14, what="'durable' stored")
    os.kill(rec.proc.pid, signal.SIGKILL)
    rec.proc.wait()
    (session,) = sessions()  # reopening recovers the interrupted session
    assert session["state"] == "pending"
    assert show_text(session["id"]) == "durable"


def test_status_json_lists_installed_hooks(
    start_recorder: Callable[[], Recording], private_home: Paths
) -> None:
    ct("consent", "give", "--category", "keys", "--category", "scroll")
    rec = start_recorder()
    snap = json.loads(ct("status", "--json").stdout)
    assert snap["state"] == "recording"
    assert sorted(snap["hooks"]) == ["focus", "keyboard", "mouse.scroll"]
    assert snap["key_storage"]["backend"] == "file"
    rec.stop()
    snap = json.loads(ct("status", "--json").stdout)
    assert snap["state"] == "not running"
    assert snap["hooks"] == []


def test_record_refuses_a_missing_display(monkeypatch: pytest.MonkeyPatch) -> None:
    ct("consent", "give", "--category", "keys")
    monkeypatch.delenv("DISPLAY", raising=False)
    done = ct("record", "--duration", "1s", check=False)
    assert done.returncode == 2
    assert "display" in done.stderr.lower()
    snap = json.loads(ct("status", "--json").stdout)
    assert snap["state"] == "cannot record"


def test_record_refuses_wayland(monkeypatch: pytest.MonkeyPatch, xserver: Any) -> None:
    ct("consent", "give", "--category", "keys")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    done = ct("record", "--duration", "1s", check=False)
    assert done.returncode == 2
    assert "wayland" in done.stderr.lower()
