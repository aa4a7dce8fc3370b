"""A personal exclusion, stored sealed and ledgered by tag only, still keeps its
application out of a real recording, and its name out of every file under home."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.recording import Recording, sessions, show_text, status
from tests.support.waiting import wait_for


def test_a_personal_exclusion_records_nothing_and_names_nothing_on_disk(
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    app_window: Callable[[str, str], str],
    wm: Any,
    private_home: Paths,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    ct("exclude", "add", "Zz-Private-Messenger")
    editor = app_window("Gedit", "notes")
    private = app_window("Zz-Private-Messenger", "chat")
    xdo("windowactivate", "--sync", editor)
    rec = start_recorder()
    wait_for(lambda: status(private_home)["application"] == "Gedit", what="editor focus")
    xdo("type", "--delay", "20", "seen")
    # Keys up to LAG_MS before a focus change count as possibly sent after it.
    rec.wait_stored("keys", 8, what="'seen' stored")
    xdo("windowactivate", "--sync", private)
    wait_for(lambda: status(private_home)["excluded_now"], what="messenger excluded")
    xdo("type", "--delay", "20", "unseen")
    xdo("windowactivate", "--sync", editor)
    wait_for(lambda: not status(private_home)["excluded_now"], what="back from messenger")
    # The interval's end marker is stored after every key typed inside it was
    # decided: once it is, a wrongly kept key of 'unseen' would be stored too.
    rec.wait_stored("excluded_markers", 2, what="the excluded interval's markers")
    rec.stop()
    (session,) = sessions()
    assert show_text(session["id"]) == "seen"
    assert session["counts"]["excluded_intervals"] == 1
    ct("ledger", "export", "--out", str(tmp_path / "ledger.jsonl"))
    assert "private-messenger" not in (tmp_path / "ledger.jsonl").read_text().casefold()
    for path in private_home.home.rglob("*"):
        if path.is_file():
            assert b"private-messenger" not in path.read_bytes().lower(), path.name
