"""Which key events to delete so that a span of a reconstructed text was never typed.

`Stream.footprint` (review/text.py) answers with `span_footprint`: it replays
the stream's actions, recorded in a `KeyLog` while `reconstruct` built the
text, through two editors side by side, and chooses for each action whether
taking it out keeps the rest of the text as it was. The rebuilding of text
and this choice are separate concerns: the first models a text field, the
second searches over what a deletion may take.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from cleartrace.review.editor import Editor
from cleartrace.review.keysyms import Op, Press

__all__ = ["KeyLog", "span_footprint"]


@dataclass(slots=True)
class KeyLog:
    """What a footprint replays: one stream's actions and its other key events.

    `reconstruct` (review/text.py) fills it while it builds the stream.

    An action is a press that did something (or a click): `at[k]` is its index
    among the events, `did[k]` the decoded press.
    """

    at: list[int] = field(default_factory=list)
    did: list[Press] = field(default_factory=list)
    modifiers: list[int] = field(default_factory=list)  # presses of Shift, Ctrl, Alt, ...
    toggles: list[int] = field(default_factory=list)  # Caps Lock presses that toggled it
    loose: list[int] = field(default_factory=list)  # unpaired releases, dropped dead keys
    cells: list[tuple[int, ...]] = field(default_factory=list)  # presses behind each character
    ups: dict[int, int] = field(default_factory=dict)  # press -> release (whole session)
    end: int = 0  # the index where the stream's focus period ends
    #: press of an action that deleted characters -> the presses behind them
    deleted: dict[int, tuple[int, ...]] = field(default_factory=dict)


def span_footprint(log: KeyLog, start: int, end: int) -> set[int]:
    """The events to take out so that characters `start:end` of the stream were never typed.

    Includes events behind characters outside the span when the span's typing
    replaced them; `Stream.footprint` then spares the sources of what stays in the text.
    """
    return _Footprint(log, start, end).events()


_TAKE: tuple[bool, ...] = (True,)
_KEEP: tuple[bool, ...] = (False,)
_TAKE_OR_KEEP: tuple[bool, ...] = (True, False)
_KEEP_OR_TAKE: tuple[bool, ...] = (False, True)
_DRIFT, _RESTART = 2, 3  # _step's other answers


def _image(gone: bytearray, ref: int, ref_image: int, pos: int) -> int:
    """Where position `pos` of the whole text is in the rest, from one whose image is known."""
    if pos >= ref:
        return ref_image + (pos - ref) - gone.count(1, ref, pos)
    return ref_image - (ref - pos) + gone.count(1, pos, ref)


class _Footprint:
    """Chooses what to take out of a stream for one span (see `span_footprint`).

    Two editors replay the stream's actions side by side: `whole` all of them,
    `rest` only those kept, and `gone` marks the characters of `whole` that
    `rest` never got. A character of the span is always taken, one outside it
    always kept; any other action is taken if it lies within the span's typing
    and kept otherwise, unless that choice would make `rest` differ from
    `whole` without the gone characters, when the other one is made. A
    deletion `rest` cannot follow (the span's character replaced kept
    characters) takes those characters too and starts again.
    """

    __slots__ = ("_forced", "_hi", "_keep", "_lo", "_log", "_span")

    def __init__(self, log: KeyLog, start: int, end: int) -> None:
        self._log, cells, ups = log, log.cells, log.ups
        self._span = {c[-1] for c in cells[start:end]}
        self._keep = {c[-1] for c in cells[:start]} | {c[-1] for c in cells[end:]}
        presses = [p for c in cells[start:end] for p in c]
        self._lo = min(presses)
        self._hi = max(presses + [ups[p] for p in presses if p in ups])
        self._forced: set[int] = set()

    def events(self) -> set[int]:
        taken = self._replay()
        while taken is None:
            taken = self._replay()
        taken |= self._idle_keys(taken)
        ups = self._log.ups
        taken.update([ups[p] for p in taken if p in ups])
        return taken

    def _replay(self) -> set[int] | None:
        """The actions (and their dead keys) taken; None to start again with more forced."""
        log = self._log
        first = bisect_left(log.at, min([self._lo, *self._forced]))
        whole = Editor()
        for i, press in zip(log.at[:first], log.did[:first], strict=True):  # nothing differs
            whole.apply(whole.plan(press.op, press.select, press.text), (i,))
        rest, gone = whole.copy(), bytearray(len(whole.chars))
        taken: set[int] = set()
        exact = True
        for i, press in zip(log.at[first:], log.did[first:], strict=True):
            if press.op is Op.CLICK:
                choices = _KEEP
            elif i in self._span or i in self._forced:
                choices = _TAKE
            elif i in self._keep:
                choices = _KEEP
            else:
                choices = _TAKE_OR_KEEP if self._lo <= i <= self._hi else _KEEP_OR_TAKE
            answer = self._step(whole, rest, gone, i, press, choices) if exact else _DRIFT
            if answer == _RESTART:
                return None
            if answer == _DRIFT:  # from here on the preferred choice, unchecked
                exact, answer = False, choices[0]
            if answer:
                taken.add(i)
                taken.update(press.deads)
        return taken

    def _step(
        self,
        whole: Editor,
        rest: Editor,
        gone: bytearray,
        i: int,
        press: Press,
        choices: tuple[bool, ...],
    ) -> int:
        """Play action `i` on `whole` and, if kept, on `rest`.

        Returns whether it is taken, or _DRIFT or _RESTART.
        """
        cursor, rest_cursor = whole.cursor, rest.cursor  # the latter is the former's image
        change = whole.plan(press.op, press.select, press.text)
        lo, hi, typed = change[0], change[1], bool(change[2])
        lo_image = _image(gone, cursor, rest_cursor, lo)
        hi_image = _image(gone, cursor, rest_cursor, hi)
        kept_deleted = [
            c[-1] for c, g in zip(whole.cells[lo:hi], gone[lo:hi], strict=True) if not g
        ]
        whole.apply(change, (i,))
        gone[lo:hi] = b"\x01" if typed else b""
        proposal = rest.plan(press.op, press.select, press.text) if False in choices else change
        for take in choices:
            if typed:
                gone[lo] = take
            new_cursor = _image(gone, lo, lo_image, whole.cursor)
            new_anchor = _image(gone, lo, lo_image, whole.anchor)
            if take:
                fits = lo_image == hi_image and (rest.cursor, rest.anchor) == (
                    new_cursor,
                    new_anchor,
                )
            else:
                fits = proposal[:2] == (lo_image, hi_image) and proposal[3:5] == (
                    new_cursor,
                    new_anchor,
                )
            if fits:
                if not take:
                    rest.apply(proposal, (i,))
                return take
        if kept_deleted and True in choices:
            self._forced.update(kept_deleted)
            return _RESTART
        if typed:
            gone[lo] = choices[0]
        return _DRIFT

    def _idle_keys(self, taken: set[int]) -> set[int]:
        """Stray releases and dropped dead keys within the span's typing, and the modifier
        holds and Caps Lock pairs over it that no kept key needs."""
        log, lo, hi = self._log, self._lo, self._hi
        kept = sorted(
            p
            for i, press in zip(log.at, log.did, strict=True)
            if press.op is not Op.CLICK
            for p in (*press.deads, i)
            if p not in taken
        )

        def idle(first: int, last: int) -> bool:
            """Whether no kept key was pressed between the two, and both touch the span."""
            k = bisect_right(kept, first)
            return first <= hi and last >= lo and (k == len(kept) or kept[k] > last)

        out = {e for e in log.loose if lo <= e <= hi}
        for press in log.modifiers:
            release = log.ups.get(press)
            if release is not None and release < log.end and idle(press, release):
                out.add(press)
        toggles = log.toggles
        k = 0
        while k + 1 < len(toggles):
            if idle(toggles[k], toggles[k + 1]):
                out.update(toggles[k : k + 2])
                k += 2
            else:
                k += 1
        return out
