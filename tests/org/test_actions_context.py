"""What actions happened in: episodes and steps, the window, the monitor; and that
the derivation is deterministic and blind to the device's re-timing."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cleartrace.events import Kind
from cleartrace.org.actions import derive_actions
from tests.support.action_events import MS, Script, retimed

TIMING = ("time", "end", "first_event", "last_event")


def rows(s: Script, *columns: str) -> list[dict[str, Any]]:
    table = derive_actions(s.table())
    return [{c: r[c] for c in columns} for r in table.to_pylist()]


def test_episodes_are_focus_segments_and_steps_count_within_them() -> None:
    s = Script()
    s.click(1, 1)  # before any focus: episode 0
    s.focus("gedit", "notes", (100, 50, 800, 600))
    s.type("hi")
    s.click(200, 200)
    s.keys("ctrl+s")
    s.focus("xterm", None, (0, 0, 0, 0))
    s.keys("Return")
    got = rows(s, "episode", "step", "action", "app", "title", "window_x", "window_width")
    assert got == [
        {"episode": 0, "step": 0, "action": "click", "app": None, "title": None,
         "window_x": None, "window_width": None},
        {"episode": 1, "step": 0, "action": "type", "app": "gedit", "title": "notes",
         "window_x": 100, "window_width": 800},
        {"episode": 1, "step": 1, "action": "click", "app": "gedit", "title": "notes",
         "window_x": 100, "window_width": 800},
        {"episode": 1, "step": 2, "action": "hotkey", "app": "gedit", "title": "notes",
         "window_x": 100, "window_width": 800},
        {"episode": 2, "step": 0, "action": "key", "app": "xterm", "title": None,
         "window_x": None, "window_width": None},
    ]  # fmt: skip


def test_a_click_before_a_focus_change_belongs_to_the_window_before() -> None:
    s = Script(step_ms=1)
    s.focus("a")
    s.click(10, 10)
    s.focus("b")  # 1 ms later, as the window manager follows the click
    s.click(10, 10)
    assert rows(s, "app", "episode") == [{"app": "a", "episode": 1}, {"app": "b", "episode": 2}]


def test_positions_are_normalised_to_the_monitor_holding_them() -> None:
    s = Script()
    s.screen((0, 0, 1920, 1080), (1920, 0, 1280, 1024))
    s.click(960, 540)
    s.click(2560, 256, button=3)
    s.click(3000, 1050)  # below the second monitor: on none
    s.click(100, 100, to=(2240, 512))
    s.screen((0, 0, 1000, 500))  # a new layout from here on
    s.scroll(250, 125, dy=1)
    got = rows(s, "action", "x_norm", "y_norm", "to_x_norm", "to_y_norm")
    assert got == [
        {"action": "click", "x_norm": 0.5, "y_norm": 0.5, "to_x_norm": None, "to_y_norm": None},
        {"action": "right_click", "x_norm": 0.5, "y_norm": 0.25,
         "to_x_norm": None, "to_y_norm": None},
        {"action": "click", "x_norm": None, "y_norm": None, "to_x_norm": None, "to_y_norm": None},
        {"action": "drag", "x_norm": 100 / 1920, "y_norm": 100 / 1080,
         "to_x_norm": 0.25, "to_y_norm": 0.5},
        {"action": "scroll", "x_norm": 0.25, "y_norm": 0.25, "to_x_norm": None, "to_y_norm": None},
    ]  # fmt: skip


def test_no_layout_no_normalised_position_and_a_layout_without_monitors_is_the_root() -> None:
    s = Script()
    s.click(10, 10)
    s.screen(root=(800, 600))
    s.click(400, 150)
    got = rows(s, "x", "x_norm", "y_norm")
    assert got == [
        {"x": 10, "x_norm": None, "y_norm": None},
        {"x": 400, "x_norm": 0.5, "y_norm": 0.25},
    ]


def test_key_actions_have_no_position() -> None:
    s = Script()
    s.screen((0, 0, 1920, 1080))
    s.type("a")
    (row,) = rows(s, "x", "y", "x_norm", "button", "dx")
    assert set(row.values()) == {None}


def script_of_a_session() -> Script:
    s = Script(step_ms=37)
    s.screen((0, 0, 1920, 1080), (1920, 0, 1920, 1080))
    s.focus("gedit", "notes", (10, 20, 900, 700))
    s.click(300, 300)
    for x in range(300, 320, 3):
        s.move(x, 301)
    s.type("Helo")
    s.keys("Left", "Left")
    s.type("l")
    s.keys("End")
    s.type(" world")
    s.move(400, 300)
    s.keys("ctrl+s", "Return")
    s.wait(2500)
    s.type("next")
    s.click(500, 500)
    s.click(500, 501)
    s.click(500, 500, to=(900, 800))
    for _ in range(4):
        s.scroll(700, 700, dy=-1)
    s.focus("firefox", "a page", (1920, 0, 1920, 1080))
    s.click(2000, 500)
    s.type("query")
    s.keys("Return")
    return s


def test_the_same_events_give_the_same_actions() -> None:
    s = script_of_a_session()
    first, second = derive_actions(s.table()), derive_actions(s.table())
    assert first.equals(second)
    assert first.column("action").to_pylist() == [
        "click", "type", "hotkey", "key", "type", "double_click", "drag", "scroll",
        "click", "type", "key",
    ]  # fmt: skip
    assert first.column("text").to_pylist()[1] == "Hello world"


def test_events_re_timed_as_the_device_does_give_the_same_actions() -> None:
    raw = derive_actions(script_of_a_session().table())
    even = derive_actions(retimed(script_of_a_session().table()))
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


@pytest.mark.parametrize("step_ms", [1, 7, 120, 500])
def test_typing_at_any_pace_re_timed_gives_the_same_text(step_ms: float) -> None:
    s = Script(step_ms=step_ms)
    s.focus("gedit")
    s.type("abc")
    s.keys("BackSpace", "shift+Left")
    s.type("Z")
    s.move(5, 5)
    s.scroll(5, 5, dy=2)
    s.type("q")
    raw = derive_actions(s.table())
    even = derive_actions(retimed(s.table()))
    assert [r["text"] for r in raw.to_pylist() if r["action"] == "type"] == ["aZq"]
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


def test_a_scroll_during_a_typing_run_comes_after_the_run_s_key_actions() -> None:
    s = Script(step_ms=120)
    s.type("abc")
    s.scroll(5, 5, dy=-1)  # among the keys of one typing run
    s.keys("ctrl+s")
    s.type("de")
    s.wait(2500)
    s.scroll(5, 5, dy=-1)  # between runs: in its place
    s.type("f")
    raw = derive_actions(s.table())
    even = derive_actions(retimed(s.table()))
    assert raw.column("action").to_pylist() == [
        "type",
        "hotkey",
        "type",
        "scroll",
        "scroll",
        "type",
    ]
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


def random_session(seed: int) -> Script:
    """A session of everything at four paces, with pauses around the limits."""
    rnd = random.Random(seed)  # noqa: S311 - a reproducible script, not a secret
    s = Script(step_ms=rnd.choice([1, 3, 30, 120]))
    s.screen((0, 0, 1920, 1080), (1920, 0, 1280, 1024))
    for _ in range(rnd.randint(5, 40)):
        r = rnd.random()
        if r < 0.3:
            s.type(rnd.choice(["ab", "Hi!", "x"]))
        elif r < 0.4:
            s.keys(rnd.choice(["BackSpace", "Left", "shift+Left", "ctrl+s", "Return", "Tab"]))
        elif r < 0.55:
            s.click(rnd.randint(0, 3000), rnd.randint(0, 1000), rnd.choice([1, 1, 1, 3]))
        elif r < 0.6:
            s.click(100, 100, to=(300, 300))
        elif r < 0.65:
            s.focus(rnd.choice(["a", "b"]), "t", (1, 2, 3, 4))
        elif r < 0.75:
            s.move(rnd.randint(0, 3000), rnd.randint(0, 1000))
        elif r < 0.8:
            s.wait(rnd.choice([100, 480, 520, 2100]))
        elif r < 0.9:
            s.scroll(5, 5, dy=rnd.choice([-1, 1]))
        else:
            s.step = rnd.choice([1, 3, 30, 120]) * MS
    return s


@pytest.mark.parametrize("seed", range(60))
def test_any_session_re_timed_gives_the_same_actions(seed: int) -> None:
    s = random_session(seed)
    raw = derive_actions(s.table())
    even = derive_actions(retimed(s.table()))
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


def test_pointer_gaps_are_measured_on_the_frame_grid_the_device_floors_them_to() -> None:
    s = Script()
    s.t -= s.t % 16_667_000  # the start of a frame
    s.step = 16_000_000
    s.click(100, 100)  # released 16 ms into its frame
    s.wait(490 - 16)  # pressed again 490 ms later: 30 frames on, 500.01 ms on the grid
    s.click(100, 100)
    raw = derive_actions(s.table())
    even = derive_actions(retimed(s.table()))
    assert raw.column("action").to_pylist() == ["click", "click"]
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


def test_pointer_times_are_compared_where_re_timing_puts_them() -> None:
    s = Script(step_ms=1)
    s.t -= s.t % 16_667_000  # the start of a frame
    s.type("abc")  # key events 1 ms apart: re-timed at 10 ms, later than they were
    s.scroll(5, 5, dy=1)  # 7 ms: re-timed behind the key before it, at 51 ms
    s.wait(480)
    s.type("de")  # the same typing run
    s.wait(13)
    s.scroll(5, 5, dy=1)  # 505 ms: 30 frames after the first, 27 after it re-timed
    raw = derive_actions(s.table())
    even = derive_actions(retimed(s.table()))
    assert [(r["action"], r["dy"]) for r in raw.to_pylist()][-1] == ("scroll", 2)
    assert even.drop_columns(list(TIMING)).equals(raw.drop_columns(list(TIMING)))


def test_an_exclusion_ends_typing_and_releases_held_modifiers() -> None:
    s = Script()
    s.type("ab")
    s.down("ctrl")
    s.add(Kind.EXCLUDED_START)  # the Ctrl release is not recorded
    s.add(Kind.EXCLUDED_END)
    s.type("cd")
    assert rows(s, "action", "text") == [
        {"action": "type", "text": "ab"},
        {"action": "type", "text": "cd"},
    ]
