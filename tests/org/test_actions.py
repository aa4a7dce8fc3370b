"""Pointer actions: clicks and their multiples, drags, scrolls; the schema and empty input."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from cleartrace.org.actions import ACTION_SCHEMA, derive_actions
from tests.support.action_events import Script


def actions(script: Script, *columns: str, drop: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    table = derive_actions(script.table(drop))
    assert table.schema.equals(ACTION_SCHEMA)
    rows = table.to_pylist()
    return [{c: row[c] for c in columns} for row in rows] if columns else rows


def test_empty_input_gives_an_empty_table_of_the_schema() -> None:
    table = derive_actions(Script().table())
    assert table.num_rows == 0
    assert table.schema.equals(ACTION_SCHEMA)


def test_moves_alone_are_no_action() -> None:
    s = Script()
    for x in range(10):
        s.move(100 + x, 200)
    assert actions(s) == []


def test_a_click_has_its_position_button_and_code() -> None:
    s = Script()
    s.move(630, 400)
    s.click(640, 412)
    (row,) = actions(s)
    assert row["action"] == "click"
    assert (row["x"], row["y"], row["button"]) == (640, 412, "left")
    assert row["code"] == "pyautogui.click(640, 412)"
    assert row["category"] == "clicks"
    assert (row["first_event"], row["last_event"]) == (1, 2)
    assert (row["text"], row["keys"], row["dx"]) == (None, None, None)


def test_right_and_middle_buttons() -> None:
    s = Script()
    s.click(10, 20, button=3)
    s.click(30, 40, button=2)
    rows = actions(s, "action", "button", "code")
    assert rows == [
        {"action": "right_click", "button": "right", "code": "pyautogui.rightClick(10, 20)"},
        {"action": "middle_click", "button": "middle", "code": "pyautogui.middleClick(30, 40)"},
    ]


def test_clicks_in_quick_succession_make_double_and_triple_clicks() -> None:
    s = Script(step_ms=60)
    s.click(100, 100)
    s.click(101, 102)  # within 4 px and 500 ms of the previous up
    s.wait(1000)
    for _ in range(3):
        s.click(300, 300)
    s.wait(1000)
    for _ in range(4):  # more than three: a triple, then a new click
        s.click(500, 500)
    rows = actions(s, "action", "x", "y", "code", "first_event", "last_event")
    assert [r["action"] for r in rows] == ["double_click", "triple_click", "triple_click", "click"]
    assert rows[0] == {
        "action": "double_click", "x": 100, "y": 100,
        "code": "pyautogui.doubleClick(100, 100)", "first_event": 0, "last_event": 3,
    }  # fmt: skip
    assert rows[1]["code"] == "pyautogui.tripleClick(300, 300)"
    assert (rows[3]["first_event"], rows[3]["last_event"]) == (16, 17)


def test_a_slow_second_click_or_one_too_far_is_a_click_of_its_own() -> None:
    s = Script(step_ms=60)
    s.click(100, 100)
    s.wait(500)  # the next down 560 ms after the up
    s.click(100, 100)
    s.click(105, 100)  # 5 px away
    assert [r["action"] for r in actions(s)] == ["click", "click", "click"]


def test_a_second_click_exactly_4_px_away_still_doubles() -> None:
    s = Script(step_ms=60)
    s.click(100, 100)
    s.click(100, 104)
    assert [r["action"] for r in actions(s)] == ["double_click"]


def test_a_release_more_than_5_px_away_is_a_drag() -> None:
    s = Script()
    s.click(100, 100, to=(105, 100))  # 5 px: still a click
    s.wait(1000)
    s.click(100, 100, to=(104, 104))  # 5.66 px: a drag
    s.wait(1000)
    s.click(200, 300, button=3, to=(400, 500))
    rows = actions(s, "action", "x", "y", "to_x", "to_y", "button", "code", "category")
    assert rows[0]["action"] == "click"
    assert rows[1] == {
        "action": "drag", "x": 100, "y": 100, "to_x": 104, "to_y": 104, "button": "left",
        "code": "pyautogui.moveTo(100, 100); pyautogui.dragTo(104, 104, button='left')",
        "category": "clicks",
    }  # fmt: skip
    assert rows[2]["code"].endswith("dragTo(400, 500, button='right')")


def test_a_drag_does_not_start_a_double_click() -> None:
    s = Script(step_ms=60)
    s.click(100, 100, to=(200, 100))
    s.click(200, 100)
    assert [r["action"] for r in actions(s)] == ["drag", "click"]


def test_scroll_steps_in_a_row_merge_into_one_action() -> None:
    s = Script(step_ms=40)
    for _ in range(3):
        s.scroll(500, 600, dy=-1)
    s.move(501, 600)
    s.scroll(501, 600, dy=-1)
    s.scroll(501, 600, dy=1)  # other direction: a new action
    s.wait(600)
    s.scroll(501, 600, dy=1)  # after a pause: a new action
    s.scroll(10, 10, dx=2)
    rows = actions(s, "action", "x", "y", "dx", "dy", "code", "first_event", "last_event")
    assert rows == [
        {"action": "scroll", "x": 500, "y": 600, "dx": 0, "dy": -4,
         "code": "pyautogui.scroll(-4, x=500, y=600)", "first_event": 0, "last_event": 4},
        {"action": "scroll", "x": 501, "y": 600, "dx": 0, "dy": 1,
         "code": "pyautogui.scroll(1, x=501, y=600)", "first_event": 5, "last_event": 5},
        {"action": "scroll", "x": 501, "y": 600, "dx": 0, "dy": 1,
         "code": "pyautogui.scroll(1, x=501, y=600)", "first_event": 6, "last_event": 6},
        {"action": "scroll", "x": 10, "y": 10, "dx": 2, "dy": 0,
         "code": "pyautogui.hscroll(2, x=10, y=10)", "first_event": 7, "last_event": 7},
    ]  # fmt: skip
    assert {r["category"] for r in actions(s)} == {"scroll"}


def test_a_click_splits_a_scroll() -> None:
    s = Script(step_ms=40)
    s.scroll(5, 5, dy=1)
    s.click(5, 5)
    s.scroll(5, 5, dy=1)
    assert [r["action"] for r in actions(s)] == ["scroll", "click", "scroll"]


def test_lineage_indices_follow_the_index_column_with_gaps() -> None:
    s = Script()
    s.move(1, 1)
    s.move(2, 2)
    s.click(50, 60)  # rows 2, 3
    s.scroll(50, 60, dy=1)  # row 4
    (click, scroll) = actions(s, "first_event", "last_event", drop=(0, 1))
    assert click == {"first_event": 2, "last_event": 3}
    assert scroll == {"first_event": 4, "last_event": 4}


def test_times_are_those_of_the_first_and_last_event() -> None:
    s = Script()
    s.click(1, 1)
    (row,) = derive_actions(s.table()).to_pylist()
    times = s.table().column("t_ns").to_pylist()
    assert row["time"] == pa.scalar(times[0] // 1000, pa.timestamp("us", "UTC")).as_py()
    assert row["end"] == pa.scalar(times[1] // 1000, pa.timestamp("us", "UTC")).as_py()


def test_a_press_or_release_whose_other_half_was_dropped_is_no_click() -> None:
    s = Script()
    s.click(10, 10)  # rows 0, 1: the release dropped
    s.click(20, 20)  # rows 2, 3
    s.wait(1000)
    s.click(30, 30)  # rows 4, 5: the press dropped
    assert actions(s, "x", "first_event", drop=(1, 4)) == [{"x": 20, "first_event": 2}]


def test_distances_do_not_overflow_at_the_ends_of_the_coordinate_range() -> None:
    s = Script()
    s.click(-(2**31), 0, to=(2**31 - 1, 0))
    assert [r["action"] for r in actions(s)] == ["drag"]
