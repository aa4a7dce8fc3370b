"""Context on a real X server: the screen layout (RandR), the focused window's
geometry and the keyboard layout (XKB) recorded by `cleartrace record`, each
under the category it belongs to, nothing of an excluded window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.context import (
    exported_events,
    lock_next_group,
    run_x,
    set_dpi,
    split_screen,
)
from tests.support.recording import Recording, sessions, status, stored
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xserver

CONTEXT = ("screen", "monitor", "layout")


def numbers(event: dict[str, Any]) -> tuple[Any, ...]:
    kind = event["kind"]
    if kind == "screen":
        return (kind, event["monitors"], event["width"], event["height"], event["scale"])
    if kind == "layout":
        return (kind, event["group"], event["layout"])
    return (kind, event["x"], event["y"], event["width"], event["height"])


def context_of(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [numbers(e) for e in events if e["kind"] in CONTEXT]


def test_the_screen_layout_opens_the_session_and_each_change_follows(
    start_recorder: Callable[[], Recording],
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    set_dpi(120)
    app_window("Gedit", "notes")
    rec = start_recorder()
    # Context is counted apart: the counts per category are of input.
    rec.wait_stored("context", 3, what="the screen (2) and keyboard layout at the start")
    split_screen()
    rec.wait_stored("context", 6, what="the split screen")
    xdo("type", "--delay", "20", "ok")
    rec.wait_stored("keys", 4, what="keys")
    assert stored(rec.paths, "clicks") == 0
    ct("sessions", "end-current")
    xdo("type", "--delay", "20", "ok")
    rec.wait_stored("keys", 4, what="keys of the next session")
    rec.stop()
    events, following = exported_events(tmp_path)
    # The next session stands alone: it opens with the whole context.
    assert context_of(following)[:4] == [
        ("screen", 2, 1280, 800, 125),
        ("monitor", 0, 0, 640, 800),
        ("monitor", 640, 0, 640, 800),
        ("layout", 0, "us"),
    ]
    screens = [c for c in context_of(events) if c[0] != "layout"]
    assert screens == [
        ("screen", 1, 1280, 800, 125),
        ("monitor", 0, 0, 1280, 800),
        ("screen", 2, 1280, 800, 125),
        ("monitor", 0, 0, 640, 800),
        ("monitor", 640, 0, 640, 800),
    ]
    assert events[0]["kind"] == "screen"  # the session stands alone


def test_focus_events_carry_the_window_geometry_and_nothing_of_an_excluded_one(
    start_recorder: Callable[[], Recording],
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    editor = app_window("Gedit", "notes")
    vault = app_window("KeePassXC", "vault", focus=False)
    term = app_window("XTerm", "shell", focus=False)
    xdo("windowmove", "--sync", editor, "10", "20")
    xdo("windowsize", "--sync", editor, "300", "200")
    xdo("windowmove", "--sync", term, "400", "300")
    xdo("windowsize", "--sync", term, "500", "250")
    xdo("windowmove", "--sync", vault, "77", "88")
    xdo("windowfocus", "--sync", editor)
    rec = start_recorder()
    wait_for(lambda: status(private_home)["application"] == "Gedit", what="editor focus")
    xdo("type", "--delay", "20", "a")
    rec.wait_stored("keys", 2, what="a key in the editor")
    xdo("windowfocus", "--sync", vault)
    wait_for(lambda: status(private_home)["excluded_now"], what="vault excluded")
    xdo("windowfocus", "--sync", term)
    wait_for(lambda: status(private_home)["application"] == "XTerm", what="terminal focus")
    xdo("type", "--delay", "20", "ls")
    rec.wait_stored("keys", 2 + 4, what="keys in the terminal")
    rec.stop()
    (events,) = exported_events(tmp_path)
    focus = [
        (e["app"], e["x"], e["y"], e["width"], e["height"]) for e in events if e["kind"] == "focus"
    ]
    assert focus == [("Gedit", 10, 20, 300, 200), ("XTerm", 400, 300, 500, 250)]
    assert not any(e.get("x") == 77 and e.get("y") == 88 for e in events)


def test_keyboard_layouts_and_group_switches_are_recorded(
    start_recorder: Callable[[], Recording],
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    ct("consent", "give", "--all")
    run_x("setxkbmap", "-layout", "us,de", "-option", "grp:alt_shift_toggle")
    app_window("Gedit", "notes")
    rec = start_recorder()
    rec.wait_stored("context", 3, what="the layouts at the start")
    lock_next_group()  # Shift and Alt down and up, then the new group
    rec.wait_stored("context", 4, what="the group switch")
    run_x("setxkbmap", "-layout", "fr")
    # The new layout, perhaps after the old names in group 0 for a moment.
    wait_for(lambda: stored(rec.paths, "context") >= 5, what="the new layout")
    xdo("type", "--delay", "20", "ok")
    rec.wait_stored("keys", 4 + 4, what="keys")
    rec.stop()
    (events,) = exported_events(tmp_path)
    seen = [c for c in context_of(events) if c[0] == "layout"]
    assert seen[:2] == [("layout", 0, "us"), ("layout", 1, "de")]
    assert seen[-1] == ("layout", 0, "fr")
    (session,) = sessions()
    assert session["applications"] == ["Gedit"]  # a layout's name is no application
    assert session["counts"] == {"app_focus": 1, "keys": 8}


def test_a_layout_switched_while_an_excluded_window_has_focus_is_told_after_it(
    start_recorder: Callable[[], Recording],
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    # Nothing is recorded between the exclusion markers, not even the keyboard's
    # layout: the layout in force is written when the excluded window is left.
    ct("consent", "give", "--all")
    editor = app_window("Gedit", "notes")
    vault = app_window("KeePassXC", "vault", focus=False)
    rec = start_recorder()
    rec.wait_stored("context", 3, what="the context at the start")
    xdo("windowfocus", "--sync", vault)
    wait_for(lambda: status(private_home)["excluded_now"], what="vault excluded")
    run_x("setxkbmap", "-layout", "de")
    # Let the watcher see the switch and the writer flush while excluded.
    xdo("sleep", "0.8")
    xdo("windowfocus", "--sync", editor)
    wait_for(lambda: status(private_home)["application"] == "Gedit", what="editor focus")
    xdo("type", "--delay", "20", "ok")
    rec.wait_stored("keys", 4, what="keys after the vault")
    rec.stop()
    (events,) = exported_events(tmp_path)
    kinds = [e["kind"] for e in events]
    start, end = kinds.index("excluded_start"), kinds.index("excluded_end")
    assert kinds[start + 1 : end] == []
    layouts = [(i, numbers(e)) for i, e in enumerate(events) if e["kind"] == "layout"]
    assert [n for i, n in layouts if i < start] == [("layout", 0, "us")]
    assert [n for i, n in layouts if i > end][:1] == [("layout", 0, "de")]


@pytest.mark.parametrize(
    ("categories", "kept", "absent"),
    [
        (("keys",), {"layout"}, {"screen", "monitor", "focus"}),
        (("clicks",), {"screen", "monitor"}, {"layout", "focus"}),
    ],
)
def test_context_is_kept_only_under_its_category(
    categories: tuple[str, ...],
    kept: set[str],
    absent: set[str],
    start_recorder: Callable[[], Recording],
    app_window: Callable[..., str],
    xdo: Callable[..., str],
    tmp_path: Path,
) -> None:
    for category in categories:
        ct("consent", "give", "--category", category)
    app_window("Gedit", "notes")
    rec = start_recorder()
    if "keys" in categories:
        xdo("type", "--delay", "20", "ok")
        rec.wait_stored("keys", 4, what="keys")
        rec.wait_stored("context", 1, what="the layout")
    else:
        xdo("mousemove", "--sync", "100", "100")
        xdo("click", "1")
        rec.wait_stored("clicks", 2, what="a click")
        rec.wait_stored("context", 2, what="the screen")
    rec.stop()
    kinds = {e["kind"] for session in exported_events(tmp_path) for e in session}
    assert kept <= kinds
    assert not (absent & kinds)
