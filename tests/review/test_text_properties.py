"""Property tests: reconstruction against a reference field, footprints that redact exactly.

Each script is a list of actions a person could take in a Qt text field. An
action emits the key events pynput would record on X and applies itself to
`Field`, a plain-string model of the field written from Qt's behaviour (and
checked against Qt under Xvfb), which also remembers the events behind each
character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from random import Random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cleartrace.events import Event, Kind, keysym_of_char
from cleartrace.review.text import reconstruct

SEPARATORS = re.escape(".,?!@#$:;-<>[](){}=/+%&^*'\"`~|")
WORD_BEFORE = re.compile(rf"(?:[{SEPARATORS}]+|[^\s{SEPARATORS}]+)?\s*\Z")
WORD_AFTER = re.compile(rf"(?:[{SEPARATORS}]+|[^\s{SEPARATORS}]+)?\s*")
LS = "\u2028"  # Qt's Shift+Return
Step = tuple[Any, ...]  # ("char", base key, shift) | ("key", name, shift, ctrl) | ...

KEYS = {
    "BackSpace": 0xFF08,
    "Tab": 0xFF09,
    "Return": 0xFF0D,
    "Delete": 0xFFFF,
    "Home": 0xFF50,
    "Left": 0xFF51,
    "Up": 0xFF52,
    "Right": 0xFF53,
    "Down": 0xFF54,
    "Prior": 0xFF55,
    "Next": 0xFF56,
    "End": 0xFF57,
    "shift": 0xFFE1,
    "ctrl": 0xFFE3,
    "Caps_Lock": 0xFFE5,
    "dead_acute": 0xFE51,
}
BASE_KEYS = "abez1,.' -"
SHIFTED = {"1": "!", ",": "<", ".": ">", "'": '"', " ": " ", "-": "_"}


@dataclass
class Field:
    """A text field as a string: cursor, anchor, the goal column of Up/Down."""

    text: str = ""
    origin: list[tuple[int, ...]] = field(default_factory=list)
    pos: int = 0
    anchor: int = 0
    goal: int | None = None

    def span(self) -> tuple[int, int]:
        return min(self.pos, self.anchor), max(self.pos, self.anchor)

    def put(self, s: str, origin: tuple[int, ...] = ()) -> None:
        a, b = self.span()
        self.text = self.text[:a] + s + self.text[b:]
        self.origin[a:b] = [origin] if s else []
        self.pos = self.anchor = a + len(s)
        self.goal = None

    def erase(self, a: int, b: int) -> None:
        self.pos, self.anchor = b, a
        self.put("")

    def go(self, target: int, select: bool) -> None:
        self.pos, self.goal = target, None
        if not select:
            self.anchor = target

    def line_start(self, p: int, breaks: str = "\n" + LS) -> int:
        return max(self.text.rfind(c, 0, p) for c in breaks) + 1

    def line_end(self, p: int, breaks: str = "\n" + LS) -> int:
        found = [i for c in breaks if (i := self.text.find(c, p)) >= 0]
        return min(found, default=len(self.text))

    def word_left(self, p: int) -> int:
        start = self.line_start(p, "\n")
        if p == start:
            return max(0, p - 1)
        match = WORD_BEFORE.search(self.text[start:p])
        assert match is not None
        return start + match.start()

    def word_right(self, p: int) -> int:
        end = self.line_end(p, "\n")
        if p == end:
            return min(len(self.text), p + 1)
        match = WORD_AFTER.match(self.text[p:end])
        assert match is not None
        return p + match.end()

    def vertical(self, up: bool, select: bool) -> None:
        start, end = self.line_start(self.pos), self.line_end(self.pos)
        if (up and start == 0) or (not up and end == len(self.text)):
            if select:
                self.go(0 if up else len(self.text), True)
            return
        column = self.pos - start if self.goal is None else self.goal
        line = self.line_start(start - 1) if up else end + 1
        length = (start - 1 if up else self.line_end(line)) - line
        self.go(line + min(column, length), select)
        self.goal = column

    def key(self, name: str, shift: bool, ctrl: bool, origin: tuple[int, ...]) -> None:
        """What a non-character key does (Qt's QPlainTextEdit); `origin` are its events."""
        a, b = self.span()
        if name == "Delete" and shift and not ctrl:  # Cut: the clipboard is not captured
            self.erase(a, b)
        elif name in ("BackSpace", "Delete"):
            if a == b and ctrl:
                a, b = (self.word_left(a), a) if name == "BackSpace" else (a, self.word_right(a))
            elif a == b:
                a, b = (
                    (max(0, a - 1), a) if name == "BackSpace" else (a, min(len(self.text), a + 1))
                )
            self.erase(a, b)
        elif name in ("Return", "Tab"):
            self.put({"Return": LS if shift else "\n", "Tab": "\t"}[name], origin)
        elif name in ("Left", "Right") and ctrl:
            self.go((self.word_left if name == "Left" else self.word_right)(self.pos), shift)
        elif name in ("Left", "Right"):
            left = name == "Left"
            if a < b and not shift:
                self.go(a if left else b, False)
            else:
                self.go(max(0, self.pos - 1) if left else min(len(self.text), self.pos + 1), shift)
        elif name in ("Home", "End") and not ctrl:
            self.go(self.line_start(self.pos) if name == "Home" else self.line_end(self.pos), shift)
        elif name in ("Home", "Prior", "End", "Next"):
            self.go(0 if name in ("Home", "Prior") else len(self.text), shift)
        elif name in ("Up", "Down") and not ctrl:
            self.vertical(name == "Up", shift)


class Recorder:
    """Key events as pynput reports them on X, applied to a `Field` as they are made."""

    def __init__(self, rnd: Random) -> None:
        self.rnd = rnd
        self.events: list[Event] = [Event(0, Kind.FOCUS, app="Editor", title="draft")]
        self.field = Field()
        self.caps = False

    def add(self, kind: Kind, a: int = 0) -> int:
        index = len(self.events)
        self.events.append(Event(index, kind, a))
        if self.rnd.random() < 0.1:  # the mouse moves meanwhile
            self.events.append(Event(index + 1, Kind.MOVE, 3, 4))
        return index

    def char(self, base: str, shift: bool) -> None:
        char = SHIFTED.get(base, base.upper()) if shift else base
        if self.caps and char.isalpha():
            char = char.swapcase()
        if shift:
            self.add(Kind.KEY_DOWN, KEYS["shift"])
        press = self.add(
            Kind.KEY_DOWN, keysym_of_char(SHIFTED.get(base, base.upper()) if shift else base)
        )
        if shift and self.rnd.random() < 0.5:  # Shift let go first: the release is unshifted
            self.add(Kind.KEY_UP, KEYS["shift"])
            release = self.add(Kind.KEY_UP, keysym_of_char(base))
        else:
            release = self.add(
                Kind.KEY_UP, keysym_of_char(SHIFTED.get(base, base.upper()) if shift else base)
            )
            if shift:
                self.add(Kind.KEY_UP, KEYS["shift"])
        self.field.put(char, (press, release))

    def repeat(self, base: str, times: int) -> None:
        """A key held down: X repeats the press, one release ends it."""
        char = base.swapcase() if self.caps and base.isalpha() else base
        for _ in range(times - 1):
            self.field.put(char, (self.add(Kind.KEY_DOWN, keysym_of_char(base)),))
        press = self.add(Kind.KEY_DOWN, keysym_of_char(base))
        self.field.put(char, (press, self.add(Kind.KEY_UP, keysym_of_char(base))))

    def dead(self, vowel: str) -> None:
        dead = (
            self.add(Kind.KEY_DOWN, KEYS["dead_acute"]),
            self.add(Kind.KEY_UP, KEYS["dead_acute"]),
        )
        char = vowel.swapcase() if self.caps else vowel
        press = self.add(Kind.KEY_DOWN, keysym_of_char(vowel))
        release = self.add(Kind.KEY_UP, keysym_of_char(vowel))
        self.field.put(unicodedata.normalize("NFC", char + "\u0301"), (*dead, press, release))

    def key(self, name: str, shift: bool = False, ctrl: bool = False) -> None:
        mods = [m for m, on in (("ctrl", ctrl), ("shift", shift)) if on]
        for m in mods:
            self.add(Kind.KEY_DOWN, KEYS[m])
        press = self.add(Kind.KEY_DOWN, KEYS[name])
        release = self.add(Kind.KEY_UP, KEYS[name])
        for m in reversed(mods):
            self.add(Kind.KEY_UP, KEYS[m])
        if name == "Caps_Lock":
            self.caps = not self.caps
            return
        self.field.key(name, shift, ctrl, (press, release))

    def ctrl_letter(self, letter: str) -> None:
        self.add(Kind.KEY_DOWN, KEYS["ctrl"])
        self.add(Kind.KEY_DOWN, ord(letter))
        self.add(Kind.KEY_UP, ord(letter))
        self.add(Kind.KEY_UP, KEYS["ctrl"])
        if letter == "a":
            self.field.pos, self.field.anchor, self.field.goal = len(self.field.text), 0, None

    def click(self) -> None:
        self.add(Kind.BUTTON_DOWN, 1)
        self.add(Kind.BUTTON_UP, 1)
        end = len(self.field.text)
        self.field.pos = self.field.anchor = end
        self.field.goal = None


def action(line_moves: bool, breaks: bool, word_moves: bool) -> st.SearchStrategy[Step]:
    """One step of a script; the flags allow what a footprint cannot always follow:
    Home/End (and Up/Down with line breaks), line breaks, Ctrl+Left/Right."""
    names = ["Left", "Right", "BackSpace", "Delete", "Tab", "Prior", "Next"]
    names += ["Home", "End"] if line_moves else []
    names += ["Return"] if breaks else []
    names += ["Up", "Down"] if line_moves and breaks else []
    ctrl_names = ["BackSpace", "Delete", "Home", "End"] + (["Left", "Right"] if word_moves else [])
    return st.one_of(
        st.tuples(st.just("char"), st.sampled_from(BASE_KEYS), st.booleans()),
        st.tuples(st.just("char"), st.sampled_from(BASE_KEYS), st.just(False)),
        st.tuples(st.just("key"), st.sampled_from(names), st.booleans(), st.just(False)),
        st.tuples(st.just("key"), st.sampled_from(ctrl_names), st.booleans(), st.just(True)),
        st.tuples(st.just("key"), st.just("Caps_Lock"), st.just(False), st.just(False)),
        st.tuples(st.just("repeat"), st.sampled_from("ab "), st.integers(2, 4)),
        st.tuples(st.just("dead"), st.sampled_from("aeu")),
        st.tuples(st.just("ctrl"), st.sampled_from("as")),
        st.tuples(st.just("click")),
    )


def play(script: list[Step], rnd: Random) -> Recorder:
    rec = Recorder(rnd)
    for step in script:
        kind, *args = step
        if kind == "char":
            rec.char(*args)
        elif kind == "key":
            rec.key(args[0], shift=args[1] and args[0] != "Caps_Lock", ctrl=args[2])
        elif kind == "repeat":
            rec.repeat(*args)
        elif kind == "dead":
            rec.dead(*args)
        elif kind == "ctrl":
            rec.ctrl_letter(*args)
        else:
            rec.click()
    return rec


def scripts(**flags: bool) -> st.SearchStrategy[list[Step]]:
    return st.lists(action(**flags), max_size=40)


@settings(max_examples=300)
@given(scripts(line_moves=True, breaks=True, word_moves=True), st.randoms(use_true_random=False))
def test_reconstruction_equals_the_reference_field(script: list[Step], rnd: Random) -> None:
    rec = play(script, rnd)
    streams = reconstruct(rec.events)
    text = rec.field.text.replace(LS, "\n")
    if not streams:
        assert text == ""
        return
    (stream,) = streams
    assert stream.text == text
    assert stream.sources == [tuple(sorted(o)) for o in rec.field.origin]
    keys = (Kind.KEY_DOWN, Kind.KEY_UP)
    assert stream.events == [i for i, e in enumerate(rec.events) if e.kind in keys]


def check_footprints(rec: Recorder, rnd: Random, *, exact: bool = True) -> None:
    """Every span's footprint takes its characters' events and no other character's;
    if `exact`, replaying what is left types the text without the span."""
    streams = reconstruct(rec.events)
    if not streams or not streams[0].text:
        return
    (stream,) = streams
    n = len(stream.text)
    spans = [(a, b) for a in range(n) for b in range(a + 1, n + 1)]
    for start, end in spans if len(spans) <= 60 else rnd.sample(spans, 60):
        taken = stream.footprint(start, end)
        inside = {i for s in stream.sources[start:end] for i in s}
        outside = {i for k, s in enumerate(stream.sources) if not start <= k < end for i in s}
        assert inside <= taken
        assert not taken & outside
        assert taken <= set(stream.events)
        if exact:
            rest = reconstruct([e for i, e in enumerate(rec.events) if i not in taken])
            assert "".join(s.text for s in rest) == stream.text[:start] + stream.text[end:]


@settings(max_examples=150)
@given(scripts(line_moves=True, breaks=False, word_moves=False), st.randoms(use_true_random=False))
def test_removing_a_footprint_removes_exactly_its_span_from_one_line(
    script: list[Step], rnd: Random
) -> None:
    check_footprints(play(script, rnd), rnd)


@settings(max_examples=150)
@given(scripts(line_moves=False, breaks=True, word_moves=False), st.randoms(use_true_random=False))
def test_removing_a_footprint_removes_exactly_its_span_from_lines(
    script: list[Step], rnd: Random
) -> None:
    check_footprints(play(script, rnd), rnd)


@settings(max_examples=100)
@given(scripts(line_moves=True, breaks=True, word_moves=True), st.randoms(use_true_random=False))
def test_a_footprint_never_takes_another_characters_events(script: list[Step], rnd: Random) -> None:
    check_footprints(play(script, rnd), rnd, exact=False)
