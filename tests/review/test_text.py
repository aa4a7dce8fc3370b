"""Text reconstruction: each editing behaviour, the character -> event mapping, footprints."""

from __future__ import annotations

import pytest

from cleartrace.events import Event, Kind
from cleartrace.review.text import PLACEHOLDER, MarkKind, reconstruct
from tests.support.keyboard import KEYSYM, Keyboard


def without(events: list[Event], taken: set[int]) -> list[Event]:
    return [e for i, e in enumerate(events) if i not in taken]


def redacted_text(kb: Keyboard, start: int, end: int) -> str:
    streams = reconstruct(without(kb.events, kb.stream().footprint(start, end)))
    return "".join(s.text for s in streams)


# -- typing and the character -> event mapping -----------------------------------------


def test_each_character_maps_to_exactly_its_press_and_release() -> None:
    kb = Keyboard()
    pairs = kb.type("Hi, you!")
    stream = kb.stream()
    assert stream.text == "Hi, you!"
    assert stream.sources == [tuple(p) for p in pairs]
    assert (stream.app, stream.title, stream.started_ns) == ("Editor", "Editor window", 0)


def test_shift_let_go_before_the_letter_still_pairs_the_release_with_its_press() -> None:
    kb = Keyboard()
    shift = kb.down(KEYSYM["shift"])
    press = kb.down(ord("A"))
    kb.up(KEYSYM["shift"])
    release = kb.up(ord("a"))  # X reports the unshifted level at release
    excl = kb.down(KEYSYM["shift"]), kb.down(ord("!"))
    kb.up(KEYSYM["shift"])
    excl_release = kb.up(ord("1"))
    stream = kb.stream()
    assert stream.text == "A!"
    assert stream.sources == [(press, release), (excl[1], excl_release)]
    assert shift in stream.events


def test_events_lists_every_key_event_of_the_stream_and_no_mouse_event() -> None:
    kb = Keyboard()
    kb.type("ab")
    kb.keys("BackSpace", "shift+Left")
    kb.click()
    kb._add(Kind.MOVE, 5)
    stream = kb.stream()
    keys = [i for i, e in enumerate(kb.events) if e.kind in (Kind.KEY_DOWN, Kind.KEY_UP)]
    assert stream.events == keys


def test_caps_lock_is_applied_to_letters_and_shift_undoes_it() -> None:
    kb = Keyboard()
    kb.keys("Caps_Lock")
    kb.type("ab1")
    kb.type("C")  # Shift with Caps Lock: lower case, as X types it
    kb.keys("Caps_Lock")
    kb.type("d")
    assert kb.text() == "AB1cd"


def test_caps_lock_held_with_auto_repeat_toggles_once() -> None:
    kb = Keyboard()
    kb.down(KEYSYM["Caps_Lock"])
    kb.down(KEYSYM["Caps_Lock"])
    kb.up(KEYSYM["Caps_Lock"])
    kb.type("x")
    assert kb.text() == "X"


def test_auto_repeat_counts_every_press_and_the_release_goes_to_the_last() -> None:
    kb = Keyboard()
    presses = [kb.down(ord("z")) for _ in range(3)]
    release = kb.up(ord("z"))
    stream = kb.stream()
    assert stream.text == "zzz"
    assert stream.sources == [(presses[0],), (presses[1],), (presses[2], release)]


def test_backspace_delete_return_tab_and_keypad_enter() -> None:
    kb = Keyboard()
    kb.type("abx")
    kb.keys("BackSpace")
    kb.type("c")
    kb.keys("Left", "Left", "Delete", "Return", "Tab", "End", "KP_Enter")
    assert kb.text() == "a\n\tc\n"


def test_backspace_at_the_start_and_delete_at_the_end_do_nothing() -> None:
    kb = Keyboard()
    kb.type("ab")
    kb.keys("Delete", "Home", "BackSpace")
    assert kb.text() == "ab"


def test_left_right_home_end_move_within_the_current_line() -> None:
    kb = Keyboard()
    kb.type("one\ntwo")
    kb.keys("Home")
    kb.type("[")
    kb.keys("End")
    kb.type("]")
    kb.keys("Left", "Left", "Left", "Left", "Left")  # crosses "two]" and the "["
    kb.type("^")
    kb.keys("Right", "Right")
    kb.type("_")
    assert kb.text() == "one\n^[t_wo]"


def test_home_and_end_on_an_earlier_line() -> None:
    kb = Keyboard()
    kb.type("abc\ndef")
    kb.keys("Up", "Home")
    kb.type(">")
    kb.keys("End")
    kb.type("<")
    assert kb.text() == ">abc<\ndef"


def test_ctrl_left_and_right_move_by_qt_words() -> None:
    kb = Keyboard()
    kb.type("foo, bar baz")
    kb.keys("ctrl+Left", "ctrl+Left", "ctrl+Left")  # "baz", "bar", then the "," run
    kb.type("1")
    kb.keys("ctrl+Right")  # over the "," run and the space after it
    kb.type("2")
    assert kb.text() == "foo1, 2bar baz"


def test_ctrl_backspace_deletes_the_word_or_the_punctuation_run_before_the_cursor() -> None:
    kb = Keyboard()
    kb.type("Hello, World")
    kb.keys("ctrl+BackSpace")
    assert kb.text() == "Hello, "
    kb.keys("ctrl+BackSpace")
    assert kb.text() == "Hello"
    kb.type(" big   ")
    kb.keys("ctrl+BackSpace")  # the spaces and the word before them
    assert kb.text() == "Hello "


def test_ctrl_backspace_at_a_line_start_joins_the_lines() -> None:
    kb = Keyboard()
    kb.type("ab\ncd")
    kb.keys("Home", "ctrl+BackSpace")
    assert kb.text() == "abcd"


def test_ctrl_delete_deletes_the_word_and_the_spaces_after_it() -> None:
    kb = Keyboard()
    kb.type("one two three")
    kb.keys("Home", "ctrl+Right", "ctrl+Delete")
    assert kb.text() == "one three"


def test_ctrl_home_end_and_page_keys_go_to_the_ends_of_the_text() -> None:
    kb = Keyboard()
    kb.type("ab\ncd")
    kb.keys("ctrl+Home")
    kb.type("1")
    kb.keys("ctrl+End")
    kb.type("2")
    kb.keys("Prior")
    kb.type("3")
    kb.keys("Next")
    kb.type("4")
    assert kb.text() == "31ab\ncd24"


# -- selections ---------------------------------------------------------------------------


def test_shift_left_selection_is_replaced_by_typing() -> None:
    kb = Keyboard()
    kb.type("helo")
    kb.keys("shift+Left")
    kb.type("lo")
    assert kb.text() == "hello"


def test_backspace_and_delete_delete_the_selection() -> None:
    kb = Keyboard()
    kb.type("abcdef")
    kb.keys("shift+Left", "shift+Left", "BackSpace", "Home", "shift+Right", "Delete")
    assert kb.text() == "bcd"


def test_plain_arrows_collapse_the_selection_to_its_start_or_end() -> None:
    kb = Keyboard()
    kb.type("abcd")
    kb.keys("shift+Left", "shift+Left", "Left")
    kb.type("1")
    kb.keys("shift+Right", "shift+Right", "Right")
    kb.type("2")
    assert kb.text() == "ab1cd2"


def test_shift_home_end_and_ctrl_shift_word_selections() -> None:
    kb = Keyboard()
    kb.type("keep this line")
    kb.keys("shift+Home")
    kb.type("new")
    kb.keys("Home", "ctrl+shift+Right")
    kb.type("a ")
    assert kb.text() == "a "
    kb.type("b c")
    kb.keys("ctrl+shift+Left", "BackSpace", "Home", "shift+End", "Delete")
    assert kb.text() == ""


def test_ctrl_a_selects_everything_and_typing_replaces_it() -> None:
    kb = Keyboard()
    kb.type("first\ndraft")
    kb.keys("ctrl+a")
    kb.type("Final")
    assert kb.text() == "Final"


def test_control_characters_are_ctrl_letters() -> None:
    kb = Keyboard()
    kb.type("old")
    kb.down(KEYSYM["ctrl"])
    kb.tap("\x01")  # how other platforms report Ctrl+A
    kb.up(KEYSYM["ctrl"])
    kb.type("new")
    assert kb.text() == "new"


def test_shortcuts_and_alt_keys_type_nothing() -> None:
    kb = Keyboard()
    kb.type("ab")
    kb.keys("ctrl+s", "alt+f", "alt+Left", "F5", "Escape", "ctrl+shift+a")
    kb.type("c")
    assert kb.text() == "abc"


# -- Up and Down --------------------------------------------------------------------------


def test_up_and_down_keep_the_column_across_a_shorter_line() -> None:
    kb = Keyboard()
    kb.type("abcdefgh\nab\nabcdefg")
    kb.keys("Up", "Up", "Down", "Down")
    kb.type("X")
    assert kb.text() == "abcdefgh\nab\nabcdefgX"


def test_typing_resets_the_column_up_and_down_aim_for() -> None:
    kb = Keyboard()
    kb.type("abc\ndefgh")
    kb.keys("Up")
    kb.type("X")  # at the end of the shorter first line
    kb.keys("Down")
    kb.type("Y")
    assert kb.text() == "abcX\ndefgYh"


def test_up_on_the_first_line_stays_and_shift_up_selects_to_the_start() -> None:
    kb = Keyboard()
    kb.type("abc")
    kb.keys("Left", "Up", "Down")
    kb.type("1")
    kb.keys("shift+Up")
    kb.type("2")
    assert kb.text() == "2c"


# -- dead keys ----------------------------------------------------------------------------


def test_dead_key_and_letter_compose_into_one_character_with_all_their_events() -> None:
    kb = Keyboard()
    dead = kb.tap("dead_acute")
    kb.down(KEYSYM["shift"])
    letter = kb.down(ord("E"))
    kb.up(KEYSYM["shift"])
    release = kb.up(ord("e"))
    stream = kb.stream()
    assert stream.text == "É"
    assert stream.sources == [(*dead, letter, release)]


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        (["dead_acute", "space"], "xy'"),  # X's Compose: a dead key and space
        (["dead_circumflex", "space"], "xy^"),
        (["dead_acute", "dead_acute"], "xy´"),  # twice: the spacing accent
        (["dead_diaeresis", "q"], "xyq"),  # nothing to compose: the letter alone
        (["dead_acute", "dead_circumflex", "a"], "xyấ"),
        (["dead_grave", "dead_acute", "e"], "xye"),
        (["dead_acute", "BackSpace"], "x"),  # cancelled, and BackSpace still deletes
        (["dead_acute", "Left", "o"], "xoy"),
        (["dead_acute", "shift+E"], "xyÉ"),  # Shift does not cancel it
    ],
)
def test_dead_key_sequences_as_qt_composes_them(keys: list[str], text: str) -> None:
    kb = Keyboard()
    kb.type("xy")
    kb.keys(*keys)
    assert kb.text() == text


def test_a_dead_key_reported_as_its_combining_character_also_composes() -> None:
    kb = Keyboard()
    kb.tap("\u0301")  # keysym 0x1000301
    kb.type("a")
    assert kb.text() == "á"


def test_a_dead_key_left_waiting_when_the_focus_moves_is_dropped() -> None:
    kb = Keyboard()
    kb.keys("dead_acute")
    kb.focus("Other")
    kb.type("e")
    assert [s.text for s in reconstruct(kb.events)] == ["", "e"]


# -- clipboard, mouse, focus --------------------------------------------------------------


def test_paste_shows_a_placeholder_whose_sources_are_the_v_key() -> None:
    kb = Keyboard()
    kb.type("to: ")
    kb.down(KEYSYM["ctrl"])
    v = kb.tap("v")
    kb.up(KEYSYM["ctrl"])
    kb.type("!")
    stream = kb.stream()
    assert stream.text == f"to: {PLACEHOLDER}!"
    assert stream.sources[4] == v
    (mark,) = stream.marks
    assert (mark.offset, mark.kind) == (4, MarkKind.PASTE)
    assert set(v) <= set(mark.events)


def test_cut_deletes_the_selection_and_copy_changes_nothing() -> None:
    kb = Keyboard()
    kb.type("abcdef")
    kb.keys("shift+Left", "shift+Left", "ctrl+c", "Home", "shift+Right", "ctrl+x")
    stream = kb.stream()
    assert stream.text == "bcdef"
    copy, cut = stream.marks
    assert (copy.kind, copy.offset) == (MarkKind.COPY, 3)  # "ef" started at 4, "a" was cut
    assert (cut.kind, cut.offset) == (MarkKind.CUT, 0)
    assert len(copy.events) == 4  # Ctrl and C, pressed and released


def test_a_mark_moves_back_when_text_before_it_is_deleted() -> None:
    kb = Keyboard()
    kb.type("abc")
    kb.keys("ctrl+v", "Home", "Delete", "Delete")
    (mark,) = kb.stream().marks
    assert kb.text() == f"c{PLACEHOLDER}"
    assert mark.offset == 1


def test_a_click_moves_the_cursor_to_the_end() -> None:
    kb = Keyboard()
    kb.type("abc")
    kb.keys("Home")
    kb.click()
    kb.type("d")
    assert kb.text() == "abcd"


def test_each_focus_starts_a_stream_and_a_release_stays_with_its_press() -> None:
    kb = Keyboard("One")
    press = kb.down(ord("a"))
    kb.focus("Empty")
    kb.focus("Two")
    release = kb.up(ord("a"))
    kb.type("b")
    one, two = reconstruct(kb.events)
    assert (one.app, one.text, one.sources) == ("One", "a", [(press, release)])
    assert (two.app, two.text) == ("Two", "b")
    assert release in one.events
    assert release not in two.events


def test_no_key_events_no_streams() -> None:
    assert reconstruct([]) == []
    focus_and_mouse = [
        Event(0, Kind.FOCUS, app="Editor"),
        Event(1, Kind.MOVE, 1, 2),
        Event(2, Kind.BUTTON_DOWN, 1, 2, 1),
        Event(3, Kind.SCROLL, 1, 2, 0, 1),
    ]
    assert reconstruct(focus_and_mouse) == []


def test_keys_before_any_focus_event_form_a_stream_without_an_application() -> None:
    kb = Keyboard()
    kb.events.pop(0)
    kb.type("hi")
    stream = kb.stream()
    assert (stream.app, stream.title, stream.text) == (None, None, "hi")


def test_an_excluded_interval_forgets_held_modifiers() -> None:
    kb = Keyboard()
    kb.down(KEYSYM["ctrl"])  # released while excluded: never recorded
    kb._add(Kind.EXCLUDED_START)
    kb._add(Kind.EXCLUDED_END)
    kb.type("a")
    assert kb.text() == "a"


def test_shift_return_breaks_the_line_but_words_run_across_it() -> None:
    kb = Keyboard()
    kb.type("one")
    kb.keys("shift+Return")
    kb.type("two")
    assert kb.text() == "one\ntwo"
    kb.keys("Home", "ctrl+BackSpace")  # Qt: a line separator, not a paragraph
    assert kb.text() == "two"


# -- footprint ----------------------------------------------------------------------------


def test_footprint_of_a_corrected_word_takes_its_typos_and_keeps_the_rest() -> None:
    kb = Keyboard()
    kb.type("pin ")
    typed = kb.type("Sx")
    back = kb.tap("BackSpace")
    rest = kb.type("ecret")
    kb.type(" ok")
    stream = kb.stream()
    assert stream.text == "pin Secret ok"
    taken = stream.footprint(4, 10)
    assert {*typed[0], *typed[1], *back} <= taken
    assert all(set(p) <= taken for p in rest)
    outside = {i for k, s in enumerate(stream.sources) if not 4 <= k < 10 for i in s}
    assert not taken & outside
    assert taken <= set(stream.events)
    assert redacted_text(kb, 4, 10) == "pin  ok"


def test_footprint_takes_the_shift_of_a_capital_and_every_release() -> None:
    kb = Keyboard()
    kb.type("a")
    shift = kb.down(KEYSYM["shift"])
    press = kb.down(ord("B"))
    shift_up = kb.up(KEYSYM["shift"])
    release = kb.up(ord("b"))
    assert kb.stream().footprint(1, 2) == {shift, press, shift_up, release}


def test_footprint_keeps_a_shift_held_for_characters_outside_the_span() -> None:
    kb = Keyboard()
    kb.down(KEYSYM["shift"])
    kb.tap("A")
    kb.tap("B")
    kb.up(KEYSYM["shift"])
    stream = kb.stream()
    assert stream.footprint(1, 2) == set(stream.sources[1])
    assert redacted_text(kb, 1, 2) == "A"


def test_footprint_takes_a_caps_lock_pair_around_the_span_only() -> None:
    kb = Keyboard()
    kb.type("a")
    on = kb.tap("Caps_Lock")
    kb.type("bc")
    off = kb.tap("Caps_Lock")
    kb.type("d")
    stream = kb.stream()
    assert stream.text == "aBCd"
    assert {*on, *off} <= stream.footprint(1, 3)
    assert not {*on, *off} & stream.footprint(1, 2)  # "C" still needs Caps Lock on
    assert redacted_text(kb, 1, 2) == "aCd"


def test_footprint_takes_the_characters_a_span_typed_over() -> None:
    kb = Keyboard()
    old = kb.type("abc")
    kb.keys("shift+Left")
    kb.type("d")  # replaces "c"
    stream = kb.stream()
    taken = stream.footprint(2, 3)
    assert set(old[2]) <= taken
    assert redacted_text(kb, 2, 3) == "ab"


def test_footprint_keeps_movements_the_rest_of_the_text_needs() -> None:
    kb = Keyboard()
    kb.type("x")  # the span
    kb.type("yz")
    left = [kb.tap("Left"), kb.tap("Left")]
    kb.type("w")
    kb.type("q")
    stream = kb.stream()
    assert stream.text == "xwqyz"
    taken = stream.footprint(0, 1)
    assert not {i for pair in left for i in pair} & taken
    assert redacted_text(kb, 0, 1) == "wqyz"


def test_footprint_of_an_empty_span_is_empty_and_a_bad_span_raises() -> None:
    kb = Keyboard()
    kb.type("abc")
    stream = kb.stream()
    assert stream.footprint(1, 1) == set()
    for start, end in ((2, 1), (-1, 2), (0, 4)):
        with pytest.raises(ValueError, match="not within") as info:
            stream.footprint(start, end)
        assert "abc" not in str(info.value)


def test_footprint_of_a_span_a_later_home_relied_on_is_safe_but_not_exact() -> None:
    kb = Keyboard()
    kb.type("ab\ncd")
    kb.keys("Home")
    kb.type("X")
    stream = kb.stream()
    assert stream.text == "ab\nXcd"
    taken = stream.footprint(2, 3)  # the line break Home stopped at
    assert set(stream.sources[2]) <= taken
    outside = {i for k, s in enumerate(stream.sources) if k != 2 for i in s}
    assert not taken & outside
    assert redacted_text(kb, 2, 3) == "Xabcd"  # not "abXcd": documented limit
