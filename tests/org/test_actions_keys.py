"""Key actions: typed text with its corrections, hotkeys, lone special keys."""

from __future__ import annotations

from cleartrace.events import Kind
from cleartrace.org.actions import derive_actions
from tests.support.action_events import Script


def kinds(s: Script, *columns: str) -> list[tuple[object, ...]]:
    rows = derive_actions(s.table()).to_pylist()
    return [tuple(row[c] for c in ("action", *columns)) for row in rows]


def test_typing_is_one_type_action_with_its_text_and_code() -> None:
    s = Script()
    s.focus("gedit")
    s.type("Hi, it's me")
    ((action, text, code, category, keys),) = kinds(s, "text", "code", "category", "keys")
    assert (action, text, category, keys) == ("type", "Hi, it's me", "keys", None)
    assert code == 'pyautogui.write("Hi, it\'s me")'


def test_corrections_are_applied_to_the_text() -> None:
    s = Script()
    s.focus("gedit")
    s.type("helo wrld")
    s.keys("Left", "Left", "Left")
    s.type("o")
    s.keys("Home", "Right", "Right", "Right")
    s.type("l")
    s.keys("End", *["shift+Left"] * 5)
    s.type("there")
    s.keys("BackSpace")
    s.type("e!")
    assert kinds(s, "text") == [("type", "hello there!")]


def test_a_hotkey_ends_typing_and_names_its_modifiers() -> None:
    s = Script()
    s.type("draft")
    s.keys("ctrl+s")
    s.type("more")
    s.keys("ctrl+shift+t", "alt+F2", "super+e", "ctrl+a")
    assert kinds(s, "text", "keys", "code") == [
        ("type", "draft", None, "pyautogui.write('draft')"),
        ("hotkey", None, "ctrl+s", "pyautogui.hotkey('ctrl', 's')"),
        ("type", "more", None, "pyautogui.write('more')"),
        ("hotkey", None, "ctrl+shift+t", "pyautogui.hotkey('ctrl', 'shift', 't')"),
        ("hotkey", None, "alt+f2", "pyautogui.hotkey('alt', 'f2')"),
        ("hotkey", None, "win+e", "pyautogui.hotkey('win', 'e')"),
        ("hotkey", None, "ctrl+a", "pyautogui.hotkey('ctrl', 'a')"),
    ]


def test_shift_with_a_printing_key_is_typing_with_a_special_key_a_hotkey() -> None:
    s = Script()
    s.keys("shift+A", "shift+!")
    s.keys("shift+Tab")
    assert kinds(s, "text", "keys") == [("type", "A!", None), ("hotkey", None, "shift+tab")]


def test_special_keys_are_key_actions_and_end_typing() -> None:
    s = Script()
    s.type("ls")
    s.keys("Return", "Tab", "Escape", "F5", "Prior", "Next", "Up")
    s.type("x")
    rows = kinds(s, "text", "keys", "code")
    assert rows == [
        ("type", "ls", None, "pyautogui.write('ls')"),
        ("key", None, "enter", "pyautogui.press('enter')"),
        ("key", None, "tab", "pyautogui.press('tab')"),
        ("key", None, "esc", "pyautogui.press('esc')"),
        ("key", None, "f5", "pyautogui.press('f5')"),
        ("key", None, "pageup", "pyautogui.press('pageup')"),
        ("key", None, "pagedown", "pyautogui.press('pagedown')"),
        ("key", None, "up", "pyautogui.press('up')"),
        ("type", "x", None, "pyautogui.write('x')"),
    ]


def test_editing_keys_before_any_text_of_their_run_are_key_actions() -> None:
    s = Script()
    s.keys("Down", "Down", "BackSpace", "shift+Right")
    s.type("ab")
    s.keys("Left", "Delete")
    assert kinds(s, "text", "keys") == [
        ("key", None, "down"),
        ("key", None, "down"),
        ("key", None, "backspace"),
        ("hotkey", None, "shift+right"),
        ("type", "a", None),
    ]


def test_a_pause_ends_typing() -> None:
    s = Script()
    s.type("one")
    s.wait(2000)
    s.type("two")
    s.wait(1900)
    s.type("three")
    assert kinds(s, "text") == [("type", "one"), ("type", "twothree")]


def test_a_pause_starts_a_run_whose_editing_keys_are_key_actions() -> None:
    s = Script()
    s.type("abc")
    s.wait(3000)
    s.keys("BackSpace")
    s.type("d")
    assert kinds(s, "text", "keys") == [
        ("type", "abc", None),
        ("key", None, "backspace"),
        ("type", "d", None),
    ]


def test_a_click_ends_typing() -> None:
    s = Script()
    s.type("ab")
    s.click(5, 5)
    s.type("cd")
    assert kinds(s, "text") == [("type", "ab"), ("click", None), ("type", "cd")]


def test_a_focus_change_ends_typing() -> None:
    s = Script()
    s.focus("a")
    s.type("ab")
    s.focus("b")
    s.type("cd")
    assert kinds(s, "text", "app") == [("type", "ab", "a"), ("type", "cd", "b")]


def test_text_is_python_escaped_in_the_code() -> None:
    s = Script()
    s.type("a\\b")
    s.keys("shift+Return")  # a hotkey: shift+enter
    s.type('say "x"')
    rows = kinds(s, "code")
    assert rows[0] == ("type", "pyautogui.write('a\\\\b')")
    assert rows[1] == ("hotkey", "pyautogui.hotkey('shift', 'enter')")
    assert rows[2] == ("type", "pyautogui.write('say \"x\"')")


def test_key_lineage_spans_the_modifiers_and_releases() -> None:
    s = Script()
    s.type("ab")  # rows 0-3
    s.keys("ctrl+s")  # rows 4-7
    s.keys("Return")  # rows 8-9
    rows = derive_actions(s.table()).to_pylist()
    spans = [(r["action"], r["first_event"], r["last_event"]) for r in rows]
    assert spans == [("type", 0, 3), ("hotkey", 4, 7), ("key", 8, 9)]


def test_modifiers_alone_are_no_action() -> None:
    s = Script()
    s.down("ctrl")
    s.up("ctrl")
    s.down("shift")
    s.up("shift")
    assert kinds(s) == []


def test_key_lineage_is_the_index_of_kept_rows() -> None:
    s = Script()
    s.type("ab")  # rows 0-3
    s.move(1, 1)  # row 4, dropped
    s.keys("ctrl+s")  # rows 5-8
    rows = derive_actions(s.table(drop=(1, 4))).to_pylist()
    spans = [(r["action"], r["first_event"], r["last_event"]) for r in rows]
    assert spans == [("type", 0, 3), ("hotkey", 5, 8)]


def test_ctrl_letter_as_a_control_character_is_the_ctrl_hotkey() -> None:
    s = Script()
    s.add(Kind.KEY_DOWN, 0x13)  # Ctrl+S as other platforms report it, Ctrl not seen
    s.add(Kind.KEY_UP, 0x13)
    assert kinds(s, "keys", "code") == [("hotkey", "ctrl+s", "pyautogui.hotkey('ctrl', 's')")]
