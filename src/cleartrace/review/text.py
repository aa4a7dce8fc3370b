"""Text typed per focused window, rebuilt from key events, every character mapped to its events.

`reconstruct` replays a session's key presses (decoded by `KeyDecoder`) into
one model text field per focus period, behaving as Qt's QPlainTextEdit does:
typing replaces the selection; BackSpace, Delete and Ctrl+BackSpace/Delete
(Qt's word rule: a run of letters or a run of punctuation, with the spaces
after it) delete it or a character or a word; Left/Right collapse a selection
or move, Ctrl+Left/Right by word, Home/End within the line, Ctrl+Home/End,
Up/Down to the same column of the next line (kept across vertical moves; Up
on the first line stays, Shift+Up selects to the start, Down likewise);
Shift extends the selection; Ctrl+A selects all. The clipboard is never
captured: Ctrl+C, Ctrl+X (which also deletes the selection) and Ctrl+V leave
a `Mark`, and a paste shows as one U+FFFC in the text.

Known limits, each a fact the events do not hold: the text a field had when
it got the focus (every stream starts empty, and returning to a window starts
a new stream); where a mouse click put the cursor (a click moves it to the
end); lines wrapped by the widget and proportional fonts (Home/End and
Up/Down act on lines as typed and columns as characters); the screenful of
Page Up/Down (taken as the whole text); undo/redo and the Insert key's
overwrite mode (not modelled); Caps Lock on before the recording started.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress
from operator import itemgetter
from typing import Protocol

from cleartrace.events import Event, FocusText, Kind, RawEvent
from cleartrace.review.editor import PLACEHOLDER, Change, Editor
from cleartrace.review.footprint import KeyLog, span_footprint
from cleartrace.review.keysyms import LINE_SEPARATOR, KeyDecoder, Op, Press

__all__ = [
    "PLACEHOLDER",
    "EventsAt",
    "Mark",
    "MarkKind",
    "Placed",
    "Reconstruction",
    "Stream",
    "StreamText",
    "reconstruct",
]


class MarkKind(StrEnum):
    """Which clipboard shortcut left a mark."""

    COPY = "copy"
    CUT = "cut"
    PASTE = "paste"


@dataclass(frozen=True, slots=True)
class Mark:
    """A clipboard shortcut: where in the final text, and the events of its keys."""

    offset: int
    kind: MarkKind
    events: tuple[int, ...]


_MARKS = {Op.COPY: MarkKind.COPY, Op.CUT: MarkKind.CUT, Op.PASTE: MarkKind.PASTE}

_CLICK = Press(Op.CLICK)


@dataclass(frozen=True, slots=True)
class StreamText:
    """What review shows of a stream: its window, its text and its marks; not
    the events behind each character (a long session's would outweigh it)."""

    app: str | None
    title: str | None
    started_ns: int
    text: str
    marks: tuple[Mark, ...]


@dataclass(slots=True)
class Stream:
    """What was typed while one window had focus.

    `sources[i]` are the indices (into the events given to `reconstruct`) of
    the events behind `text[i]`: its press and release (and those of the dead
    keys composed into it; for a paste placeholder those of the V of Ctrl+V).
    `events` are all this stream's key events, in order.
    """

    app: str | None
    title: str | None
    started_ns: int
    text: str = ""
    sources: list[tuple[int, ...]] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    _log: KeyLog = field(default_factory=KeyLog, repr=False, compare=False)

    def shown(self) -> StreamText:
        """The stream as review shows it, without its events."""
        return StreamText(self.app, self.title, self.started_ns, self.text, tuple(self.marks))

    def footprint(self, start: int, end: int) -> set[int]:
        """The events to delete so that `text[start:end]` was never typed.

        That is the sources of those characters; every other key event of the
        stream from the first to the last of them (typed-then-deleted
        characters, BackSpaces, Shift and Ctrl presses of that typing) unless
        the rest of the text needs it; the release of every press taken; and
        any event elsewhere without which the rest would no longer come out
        the same (a character this span's typing replaced). Replaying what is
        left gives `text[:start] + text[end:]` unless a separator inside the
        span steered a later line or word movement (Home after a deleted line
        break, Ctrl+Left over a deleted space, Up/Down across a shortened
        line). It never includes an event behind a character outside the span.

        Raises:
            ValueError: the span is inverted or outside the text.
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(
                f"span {start}:{end} is not within this stream of {len(self.text)} characters"
            )
        if start == end:
            return set()
        taken = span_footprint(self._log, start, end)
        for chars in (self.sources[:start], self.sources[end:]):
            for sources in chars:
                taken.difference_update(sources)
        return taken

    def typed(self) -> tuple[str, list[tuple[int, ...]]]:
        """Every character typed, in the order typed, whether deleted again or
        not, and the presses behind each (its key's, and those of its dead keys)."""
        chars: list[str] = []
        behind: list[tuple[int, ...]] = []
        for at, did in zip(self._log.at, self._log.did, strict=True):
            if did.op is Op.INSERT and did.text:
                chars.append(did.text)
                behind.extend([(*did.deads, at)] * len(did.text))
        return "".join(chars), behind

    def erased_with(self, presses: set[int]) -> set[int]:
        """`presses`, the presses of the actions that deleted only characters
        of theirs (a BackSpace after each), and all their releases: taken out
        together, the rest of the text comes out the same."""
        ups, shown = self._log.ups, {c[-1] for c in self._log.cells}
        # Not a press that typed a character still in the text (typing over a selection).
        actions = {
            a
            for a, gone in self._log.deleted.items()
            if presses.issuperset(gone) and a not in shown
        }
        taken = presses | actions
        return taken | {ups[p] for p in taken if p in ups}


class _Builder:
    """One stream while `reconstruct` runs."""

    __slots__ = ("editor", "events", "first", "log", "marks", "stream")

    def __init__(self, stream: Stream, first: int, ups: dict[int, int]) -> None:
        self.stream, self.first, self.events, self.log = stream, first, stream.events, stream._log
        self.log.ups = ups
        self.editor = Editor()
        # (kind, key of the character just before it or -1, presses of its keys)
        self.marks: list[tuple[MarkKind, int, tuple[int, ...]]] = []

    def press(self, index: int, press: Press, ctrl_press: int) -> None:
        self.events.append(index)
        op, editor = press.op, self.editor
        if op is Op.INSERT and editor.cursor == editor.anchor and not press.deads:
            self.log.at.append(index)  # typing without a selection: most presses
            self.log.did.append(press)
            at = editor.cursor
            editor.chars.insert(at, press.text)
            editor.cells.insert(at, (index,))
            editor.cursor = editor.anchor = at + 1
            editor.goal = -1
        elif op is Op.MODIFIER:
            self.log.modifiers.append(index)
        elif op is Op.CAPS:
            self.log.toggles.append(index)
        elif op is not Op.DEAD:
            self.log.at.append(index)
            self.log.did.append(press)
            if op in _MARKS:
                self._mark(_MARKS[op], (ctrl_press, index))
            cell = (*press.deads, index) if press.composed else (index,)
            self._edit(editor.plan(op, press.select, press.text), cell)

    def click(self, index: int) -> None:
        self.log.at.append(index)
        self.log.did.append(_CLICK)
        self.editor.apply(self.editor.plan(Op.CLICK, False, ""), ())

    def _mark(self, kind: MarkKind, presses: tuple[int, ...]) -> None:
        """A mark at the selection's start (or the cursor), kept after the character before it."""
        offset = min(self.editor.cursor, self.editor.anchor)
        before = self.editor.cells[offset - 1][-1] if offset else -1
        self.marks.append((kind, before, tuple(p for p in presses if p >= 0)))

    def _edit(self, change: Change, cell: tuple[int, ...]) -> None:
        lo, hi = change[0], change[1]
        if hi > lo:  # what typing this deleted (withheld.py: typing deleted again)
            self.log.deleted[cell[-1]] = tuple(p for c in self.editor.cells[lo:hi] for p in c)
        if hi > lo and self.marks:  # a mark after a deleted character moves before the deletion
            deleted = {c[-1] for c in self.editor.cells[lo:hi]}
            before = self.editor.cells[lo - 1][-1] if lo else -1
            self.marks = [(k, before if at in deleted else at, p) for k, at, p in self.marks]
        self.editor.apply(change, cell)

    def finish(self, end: int) -> Stream:
        stream, log, editor = self.stream, self.log, self.editor
        ups = log.ups
        log.cells, log.end = editor.cells, end
        stream.text = "".join(editor.chars).replace(LINE_SEPARATOR, "\n")
        stream.sources = [
            (c[0], ups[c[0]]) if len(c) == 1 and c[0] in ups else _with_ups(c, ups)
            for c in editor.cells
        ]
        if self.marks:
            where = {c[-1]: i + 1 for i, c in enumerate(editor.cells)}
            stream.marks = [
                Mark(where.get(at, 0), kind, _with_ups(presses, ups))
                for kind, at, presses in self.marks
            ]
        return stream


def _with_ups(presses: tuple[int, ...], ups: dict[int, int]) -> tuple[int, ...]:
    return tuple(sorted((*presses, *(ups[p] for p in presses if p in ups))))


def reconstruct(events: Sequence[Event]) -> list[Stream]:
    """Split `events` into focus periods and replay each one's keys into a text field.

    A stream is returned if it has key events, even when nothing of its text
    remained (its typed-then-deleted keys may still need review).
    """
    folding = Reconstruction()
    folding.feed(events)
    return folding.finish()


class Placed:
    """The time and kind of each event a stream may name (keys, clicks, focus
    changes, markers), by its index: what detections and cuts need of the
    events, without the events (a few bytes each, moves not among them)."""

    __slots__ = ("_at", "_kinds", "_times")

    def __init__(self) -> None:
        self._at, self._times, self._kinds = array("q"), array("q"), bytearray()

    def add(self, index: int, t_ns: int, kind: int) -> None:
        self._at.append(index)
        self._times.append(t_ns)
        self._kinds.append(kind)

    def __getitem__(self, index: int) -> Event:
        """The event at `index` with its time and kind only.

        Raises:
            IndexError: no stream can name that event (a move, or beyond the end).
        """
        i = bisect_left(self._at, index)
        if i == len(self._at) or self._at[i] != index:
            raise IndexError(f"event {index} is not one a text stream names")
        return Event(self._times[i], Kind(self._kinds[i]))


class EventsAt(Protocol):
    """Events by index: a session's decoded list, or the `Placed` of its reconstruction."""

    def __getitem__(self, index: int, /) -> Event: ...


_KEY_DOWN, _BUTTON_DOWN, _FOCUS = int(Kind.KEY_DOWN), int(Kind.BUTTON_DOWN), int(Kind.FOCUS)
_KEYS = frozenset({_KEY_DOWN, int(Kind.KEY_UP)})
_MARKERS = frozenset({int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)})
# A bytes.translate table: 1 for the kinds a stream depends on (and may name).
_LOOKED_AT = bytes(k in _KEYS or k in _MARKERS or k in (_BUTTON_DOWN, _FOCUS) for k in range(256))


class Reconstruction:
    """`reconstruct`, fed a session a chunk at a time (`feed`, then `finish`).

    Event indices run on across chunks, so the streams are those of the whole
    list at once whatever the chunks: a review folds a session as the store
    decodes it, never holding more than one chunk. Chunks may hold `Event`s
    or the store's raw tuples (`RawEvent`, whose seventh field is the focus
    change's (app, title)).
    """

    def __init__(self) -> None:
        self._decoder = KeyDecoder()
        self._ups: dict[int, int] = {}
        self._builders: list[_Builder] = []
        self._firsts: list[int] = []  # each builder's first event, to find a press's stream
        self._ends: list[int] = []
        self._current: _Builder | None = None
        self._next = 0  # the index of the next event fed
        self.placed = Placed()

    def feed(self, events: Sequence[Event | RawEvent]) -> None:
        """Replay the next events of the session."""
        decoder, ups, builders, firsts = self._decoder, self._ups, self._builders, self._firsts
        current, place = self._current, self.placed.add
        # Mouse moves are most events and no stream looks at them: passed over
        # at C speed (a kinds column, a mask, `compress`), not one by one.
        looked_at = bytes(map(itemgetter(1), events)).translate(_LOOKED_AT)
        numbers = range(self._next, self._next + len(events))
        for index, event in zip(
            compress(numbers, looked_at), compress(events, looked_at), strict=True
        ):
            kind = event[1]
            place(index, event[0], kind)
            if kind in _KEYS:
                if current is None:
                    current = _Builder(Stream(None, None, event[0]), index, ups)
                    builders.append(current)
                    firsts.append(index)
                if kind == _KEY_DOWN:
                    current.press(index, decoder.press(index, event[2]), decoder.ctrl_press)
                    continue
                down = decoder.release(event[2])
                if down < 0 or down >= current.first:
                    owner = current
                else:
                    owner = builders[bisect_right(firsts, down) - 1]
                owner.events.append(index)
                if down < 0:
                    owner.log.loose.append(index)
                else:
                    ups[down] = index
            elif kind == _BUTTON_DOWN:
                if current is not None:
                    current.click(index)
            elif kind == _FOCUS:
                if current is not None:
                    current.log.loose.extend(decoder.drop_dead())
                    self._ends.append(index)
                app, title = _focus_text(event)
                current = _Builder(Stream(app, title, event[0]), index, ups)
                builders.append(current)
                firsts.append(index)
            elif kind in _MARKERS:
                dropped = decoder.reset()
                if current is not None:
                    current.log.loose.extend(dropped)
        self._current, self._next = current, self._next + len(events)

    def finish(self) -> list[Stream]:
        """The streams with key events; the reconstruction is spent."""
        if self._current is not None:
            self._current.log.loose.extend(self._decoder.drop_dead())
            self._ends.append(self._next)
            self._current = None
        done = zip(self._builders, self._ends, strict=True)
        return [b.finish(end) for b, end in done if b.events]


def _focus_text(event: Event | RawEvent) -> FocusText:
    if isinstance(event, Event):
        return event.app, event.title
    return event[6] or (None, None)
