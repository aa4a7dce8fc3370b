"""The model text field `reconstruct` replays key presses into, as Qt's QPlainTextEdit behaves.

Characters, cursor, selection anchor and the goal column of Up/Down; each
character keeps the presses behind it (`cells`), so text maps back to events.
"""

from __future__ import annotations

import contextlib

from cleartrace.review.keysyms import LINE_SEPARATOR, Op

__all__ = ["PLACEHOLDER", "Change", "Editor"]

#: What a paste shows in the text: the clipboard's content is never captured.
PLACEHOLDER = "\ufffc"

_SEPARATORS = frozenset(".,?!@#$:;-<>[](){}=/+%&^*'\"`~|")  # QTextEngine::atWordSeparator
_LINE_BREAKS = frozenset(("\n", LINE_SEPARATOR))  # Home, End, Up and Down stop at either
_PARAGRAPH_BREAKS = frozenset("\n")  # word movement only at this one
_DELETIONS = frozenset({Op.BACKSPACE, Op.DELETE, Op.WORD_BACKSPACE, Op.WORD_DELETE, Op.CUT})


# A planned edit: replace chars[lo:hi] by text (0 or 1 character), then set
# cursor, anchor (== cursor without a selection) and the goal column of Up/Down.
Change = tuple[int, int, str, int, int, int]


class Editor:
    """A text field's characters, cursor and selection; `cells` are the presses behind each."""

    __slots__ = ("anchor", "cells", "chars", "cursor", "goal")

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.cells: list[tuple[int, ...]] = []
        self.cursor = self.anchor = 0
        self.goal = -1

    def copy(self) -> Editor:
        other = Editor()
        other.chars, other.cells = self.chars[:], self.cells[:]
        other.cursor, other.anchor, other.goal = self.cursor, self.anchor, self.goal
        return other

    def plan(self, op: Op, select: bool, text: str) -> Change:
        """What `op` would do, without doing it."""
        cur, anc = self.cursor, self.anchor
        lo, hi = (cur, anc) if cur <= anc else (anc, cur)
        if op is Op.INSERT or op is Op.PASTE:
            return lo, hi, text if op is Op.INSERT else PLACEHOLDER, lo + 1, lo + 1, -1
        if lo == hi:
            if op is Op.BACKSPACE:
                lo = max(0, cur - 1)
            elif op is Op.DELETE:
                hi = min(len(self.chars), cur + 1)
            elif op is Op.WORD_BACKSPACE:
                lo = self._word_left(cur)
            elif op is Op.WORD_DELETE:
                hi = self._word_right(cur)
        if op in _DELETIONS:
            return lo, hi, "", lo, lo, -1
        if op is Op.SELECT_ALL:
            return cur, cur, "", len(self.chars), 0, -1
        if op is Op.CLICK:
            end = len(self.chars)
            return cur, cur, "", end, end, -1
        target, goal = self._target(op, select, lo, hi)
        if target < 0:  # nothing moves: NOP, COPY, Up on the first line, ...
            return cur, cur, "", cur, anc, self.goal
        return cur, cur, "", target, anc if select else target, goal

    def apply(self, change: Change, cell: tuple[int, ...]) -> None:
        lo, hi, text, self.cursor, self.anchor, self.goal = change
        if hi > lo:
            del self.chars[lo:hi]
            del self.cells[lo:hi]
        if text:
            self.chars.insert(lo, text)
            self.cells.insert(lo, cell)

    def _target(self, op: Op, select: bool, lo: int, hi: int) -> tuple[int, int]:
        """Where a movement puts the cursor (-1: nowhere) and the goal column after it."""
        cur, end = self.cursor, len(self.chars)
        if op is Op.LEFT:
            return (lo if lo < hi and not select else max(0, cur - 1)), -1
        if op is Op.RIGHT:
            return (hi if lo < hi and not select else min(end, cur + 1)), -1
        if op is Op.HOME:
            return self._line_start(cur), -1
        if op is Op.END:
            return self._line_end(cur), -1
        if op is Op.WORD_LEFT:
            return self._word_left(cur), -1
        if op is Op.WORD_RIGHT:
            return self._word_right(cur), -1
        if op is Op.DOC_START:
            return 0, -1
        if op is Op.DOC_END:
            return end, -1
        if op is Op.UP or op is Op.DOWN:
            return self._vertical(op is Op.UP, select)
        return -1, -1

    def _vertical(self, up: bool, select: bool) -> tuple[int, int]:
        cur = self.cursor
        start = self._line_start(cur)
        edge = start == 0 if up else self._line_end(cur) == len(self.chars)
        if edge:  # Qt: Shift+Up on the first line selects to the start
            return ((0 if up else len(self.chars)) if select else -1), -1
        column = self.goal if self.goal >= 0 else cur - start
        if up:
            line = self._line_start(start - 1)
            length = start - 1 - line
        else:
            line = self._line_end(cur) + 1
            length = self._line_end(line) - line
        return line + min(column, length), column

    def _line_start(self, pos: int, breaks: frozenset[str] = _LINE_BREAKS) -> int:
        chars = self.chars
        while pos > 0 and chars[pos - 1] not in breaks:
            pos -= 1
        return pos

    def _line_end(self, pos: int, breaks: frozenset[str] = _LINE_BREAKS) -> int:
        end = len(self.chars)
        for line_break in breaks:
            with contextlib.suppress(ValueError):
                end = self.chars.index(line_break, pos, end)
        return end

    def _word_left(self, pos: int) -> int:
        """QTextLayout::previousCursorPosition(SkipWords), crossing a line start by one."""
        start = self._line_start(pos, _PARAGRAPH_BREAKS)
        if pos == start:
            return max(0, pos - 1)
        chars = self.chars
        while pos > start and chars[pos - 1].isspace():
            pos -= 1
        if pos > start and chars[pos - 1] in _SEPARATORS:
            while pos > start and chars[pos - 1] in _SEPARATORS:
                pos -= 1
        else:
            while (
                pos > start and not chars[pos - 1].isspace() and chars[pos - 1] not in _SEPARATORS
            ):
                pos -= 1
        return pos

    def _word_right(self, pos: int) -> int:
        """QTextLayout::nextCursorPosition(SkipWords), crossing a line end by one."""
        end = self._line_end(pos, _PARAGRAPH_BREAKS)
        if pos == end:
            return min(len(self.chars), pos + 1)
        chars = self.chars
        if chars[pos] in _SEPARATORS:
            while pos < end and chars[pos] in _SEPARATORS:
                pos += 1
        else:
            while pos < end and not chars[pos].isspace() and chars[pos] not in _SEPARATORS:
                pos += 1
        while pos < end and chars[pos].isspace():
            pos += 1
        return pos
