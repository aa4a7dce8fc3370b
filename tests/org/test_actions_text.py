"""A `type` action's text is the review's reconstruction of the same keys."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cleartrace.events import Event, Kind
from cleartrace.org.actions import derive_actions
from cleartrace.review.text import reconstruct
from tests.support.action_events import Script

EDITING = ["BackSpace", "Delete", "Left", "Right", "Home", "End", "Up", "Down"]
CHARS = [*"ab z.,!AÉ", "\u20ac"]  # Latin-1 and Unicode keysyms too

# Steps of a script: ("type", text), ("keys", combo), ("caps",), ("dead", vowel),
# ("repeat", char, times), ("hold", modifier) pressed and left held.
Step = tuple[object, ...]


def typing_step() -> st.SearchStrategy[Step]:
    """What a type action may hold: characters, corrections, Caps Lock, dead keys."""
    return st.one_of(
        st.tuples(st.just("type"), st.sampled_from(CHARS)),
        st.tuples(
            st.just("keys"),
            st.builds(
                lambda mods, key: "+".join([*mods, key]),
                st.sampled_from([(), ("shift",), ("ctrl",), ("ctrl", "shift")]),
                st.sampled_from(EDITING),
            ),
        ),
        st.tuples(st.just("caps")),
        st.tuples(st.just("dead"), st.sampled_from("aeu ")),
        st.tuples(st.just("repeat"), st.sampled_from("ab"), st.integers(2, 4)),
    )


def any_step() -> st.SearchStrategy[Step]:
    """Anything before: typing, hotkeys, special keys, a modifier left held."""
    return st.one_of(
        typing_step(),
        st.tuples(st.just("keys"), st.sampled_from(["ctrl+s", "Return", "Tab", "alt+F2"])),
        st.tuples(st.just("hold"), st.sampled_from(["shift", "ctrl"])),
    )


def play(s: Script, steps: list[Step]) -> None:
    for step in steps:
        what = step[0]
        if what == "type":
            s.type(str(step[1]))
        elif what == "keys":
            s.keys(str(step[1]))
        elif what == "caps":
            s.keys("Caps_Lock")
        elif what == "dead":
            s.keys("dead_acute")
            s.type(str(step[1]))
        elif what == "repeat":
            for _ in range(int(str(step[2]))):
                s.down(str(step[1]))
            s.up(str(step[1]))
        else:
            s.down(str(step[1]))


def events_of(s: Script) -> list[Event]:
    return [Event(t, Kind(k), a, b, c, d, app, title) for t, k, a, b, c, d, app, title in s.rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(any_step(), max_size=12), st.lists(typing_step(), max_size=25))
@example([("hold", "shift")], [("type", "y"), ("keys", "Left"), ("type", "a")])
@example([("caps",), ("keys", "Return")], [("keys", "BackSpace"), ("type", "a")])
def test_the_text_is_what_review_reconstructs(before: list[Step], typing: list[Step]) -> None:
    """Whatever came before in the bundle (Caps Lock, modifiers held), a type action
    after a focus change has the text review shows for that window."""
    s = Script(step_ms=20)
    s.focus("a")
    play(s, before)
    for modifier in ("ctrl",):  # a hotkey modifier still held would make every key a hotkey
        s.up(modifier)
    s.focus("b")
    s.type("x")  # its first character: everything after it is part of it
    play(s, typing)
    actions = derive_actions(s.table()).to_pylist()
    last = [a for a in actions if a["episode"] == 2]
    assert [a["action"] for a in last] == ["type"]
    assert last[0]["text"] == reconstruct(events_of(s))[-1].text


def test_caps_lock_from_an_earlier_run_carries_on() -> None:
    s = Script()
    s.keys("Caps_Lock")
    s.type("ab")
    s.wait(3000)
    s.type("cd")
    s.keys("BackSpace")
    s.type("e")
    texts = [a["text"] for a in derive_actions(s.table()).to_pylist()]
    assert texts == ["AB", "CE"]


def test_dead_keys_compose() -> None:
    s = Script()
    s.keys("dead_acute")
    s.type("e")
    s.type("t")
    s.keys("dead_circumflex")
    s.type("o")
    (action,) = derive_actions(s.table()).to_pylist()
    assert action["text"] == "\u00e9t\u00f4"


def test_typed_then_erased_is_a_type_action_with_no_text() -> None:
    s = Script()
    s.type("ab")
    s.keys("BackSpace", "BackSpace")
    (action,) = derive_actions(s.table()).to_pylist()
    assert (action["action"], action["text"], action["code"]) == ("type", "", "pyautogui.write('')")


def test_ctrl_backspace_after_text_deletes_a_word_of_it() -> None:
    s = Script()
    s.type("hello world")
    s.keys("ctrl+BackSpace")
    s.type("there")
    (action,) = derive_actions(s.table()).to_pylist()
    assert action["text"] == "hello there"


def test_altgr_characters_are_typing() -> None:
    s = Script()
    s.down("ISO_Level3_Shift")
    s.type("@")
    s.up("ISO_Level3_Shift")
    (action,) = derive_actions(s.table()).to_pylist()
    assert (action["action"], action["text"]) == ("type", "@")


def test_a_keysym_of_no_character_leaves_valid_text() -> None:
    s = Script()
    s.type("a")
    s.add(Kind.KEY_DOWN, 0x100D800)  # a lone surrogate: no keyboard sends it
    s.keys("Left")  # a correction: the text is replayed
    s.down("ctrl")
    s.add(Kind.KEY_DOWN, 0x100DFFF)
    table = derive_actions(s.table())
    table.validate(full=True)
    assert table.column("text").to_pylist() == ["a?", None]
    assert table.column("keys").to_pylist() == [None, "ctrl+0x100dfff"]
