"""Where a redaction took typing out of a stream's text."""

from __future__ import annotations

from cleartrace.review.cuts import removal_offsets
from cleartrace.review.text import reconstruct
from tests.support.keyboard import Keyboard


def test_a_cut_follows_the_character_typed_last_before_it_even_after_the_cursor_moved() -> None:
    kb = Keyboard()
    kb.type("ac")
    kb.keys("Left")
    kb.type("b")  # "abc": b typed last, between a and c
    removed_at = kb.events[-1].t_ns + 1  # what came next was taken out
    kb.type("d")
    streams = reconstruct(kb.events)
    assert streams[0].text == "abdc"
    assert removal_offsets(streams, kb.events, [removed_at]) == [[2]]  # after "b"


def test_a_cut_before_any_typing_is_at_the_start_and_belongs_to_its_window_only() -> None:
    kb = Keyboard("Editor")
    removed_at = kb.events[-1].t_ns + 1
    kb.type("one")
    kb.focus("Terminal")
    kb.type("ls")
    streams = reconstruct(kb.events)
    assert [s.text for s in streams] == ["one", "ls"]
    assert removal_offsets(streams, kb.events, [removed_at]) == [[0], []]


def test_no_cut_no_mark() -> None:
    kb = Keyboard()
    kb.type("text")
    assert removal_offsets(reconstruct(kb.events), kb.events, []) == [[]]
