"""The text typed in each window, with detected personal data highlighted.

The person's own text on their own screen: it is shown, and selected from,
and never logged. Offsets are Python string indices (code points) as the
review code counts them; Qt counts UTF-16 units, so `_Offsets` maps between
the two when the text holds characters beyond the BMP (emoji).
"""

from __future__ import annotations

import html
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cleartrace.categories import PiiCategory
from cleartrace.review.text import PLACEHOLDER, MarkKind, StreamText
from cleartrace.review.withheld import Detection

__all__ = ["PASTE_SIGN", "PII_COLOURS", "TextPane", "display_text", "stream_label"]

#: Background per category; the text on them is drawn black so it stays legible in dark themes.
PII_COLOURS: dict[PiiCategory, QColor] = {
    PiiCategory.EMAIL: QColor("#ffe27a"),
    PiiCategory.PHONE: QColor("#b8e6a0"),
    PiiCategory.PAYMENT_CARD: QColor("#ffb3b3"),
    PiiCategory.IBAN: QColor("#ffcc99"),
    PiiCategory.NATIONAL_ID: QColor("#d9b8ff"),
    PiiCategory.IP_ADDRESS: QColor("#a6e1f2"),
    PiiCategory.URL_CREDENTIALS: QColor("#ff9fd0"),
    PiiCategory.SECRET: QColor("#ff8f8f"),
    PiiCategory.PASSWORD: QColor("#f7a072"),
}

#: A detection the person released is no longer shaded, only underlined: it leaves as typed.
_RELEASED_COLOUR = QColor(30, 110, 200)

#: What a paste looks like: the clipboard's content is never recorded, only that it was used.
PASTE_SIGN = "\u25a3"  # ▣, one code point like the placeholder it stands for
_MARK_COLOUR = QColor(128, 128, 128)
_CUT_COLOUR = QColor(176, 0, 32)
_ROLE_NUMBER = Qt.ItemDataRole.UserRole


def display_text(text: str) -> str:
    """The text as shown: a paste's placeholder as a visible sign, offsets unchanged."""
    return text.replace(PLACEHOLDER, PASTE_SIGN)


def stream_label(number: int, stream: StreamText) -> str:
    label = f"{number}. {stream.app or 'unknown application'}"
    return f"{label} — {stream.title}" if stream.title else label


class _Offsets:
    """Between code point indices (Python) and UTF-16 positions (Qt) in one text."""

    def __init__(self, text: str) -> None:
        wide = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
        self._wide = wide  # code point index of each character taking two UTF-16 units
        self._wide_qt = [i + k for k, i in enumerate(wide)]  # and its UTF-16 position

    def to_qt(self, index: int) -> int:
        return index + bisect_left(self._wide, index)

    def to_py(self, position: int) -> int:
        """Rounds down from inside a surrogate pair (Qt's cursors never stop there)."""
        return position - bisect_left(self._wide_qt, position)


class TextPane(QWidget):
    """A list of the window streams that have text, and the chosen one's text."""

    #: The text selection, the cursor or the stream changed.
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._streams: list[StreamText] = []
        self._detections: list[list[Detection]] = []
        self._cuts: list[list[int]] = []
        self._offsets = _Offsets("")
        self._number: int | None = None  # the stream shown, from 1

        self._list = QListWidget()
        self._list.setObjectName("streams")
        self._list.setAccessibleName("Windows typed in")
        self._text = QPlainTextEdit()
        self._text.setObjectName("text")
        self._text.setReadOnly(True)
        self._text.setUndoRedoEnabled(False)
        self._text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self._text.setAccessibleName("Text typed in the chosen window")
        self._legend = QLabel()
        self._legend.setObjectName("legend")
        self._legend.setWordWrap(True)
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        self._marks = QLabel()
        self._marks.setObjectName("marks")
        self._marks.setWordWrap(True)
        self._marks.setTextFormat(Qt.TextFormat.PlainText)
        self._marks.setEnabled(False)  # drawn greyed: a hint, not an alarm
        self._silent = QLabel()
        self._silent.setEnabled(False)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self._list)
        left_layout.addWidget(self._silent)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._text, 1)
        right_layout.addWidget(self._legend)
        right_layout.addWidget(self._marks)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        self._list.currentItemChanged.connect(self._on_stream)
        self._text.selectionChanged.connect(self.selection_changed)
        self._text.cursorPositionChanged.connect(self.selection_changed)  # into a detection
        self.clear()

    # -- what is shown ---------------------------------------------------------------------

    def clear(self, message: str = "") -> None:
        self._streams, self._detections, self._number = [], [], None
        self._list.blockSignals(True)  # clearing moves the current item through the old rows
        self._list.clear()
        self._list.blockSignals(False)
        self._text.setPlainText("")
        self._text.setPlaceholderText(message)
        self._legend.clear()
        self._marks.clear()
        self._silent.clear()

    def show_streams(
        self,
        streams: Sequence[StreamText],
        detections: Sequence[Sequence[Detection]],
        current: int | None = None,
        cuts: Sequence[Sequence[int]] = (),
    ) -> None:
        """List the streams with text (numbered as the service numbers them) and show
        stream `current` if it is listed, else the first. `cuts`: per stream, the
        offsets where a redaction took typing out."""
        self._streams = list(streams)
        self._detections = [list(d) for d in detections]
        self._cuts = [list(c) for c in cuts] or [[] for _ in streams]
        self._list.blockSignals(True)
        self._list.clear()
        for number, (stream, found) in enumerate(zip(streams, detections, strict=True), 1):
            if not stream.text:
                continue
            flagged = f", {len(found)} flagged" if found else ""
            item = QListWidgetItem(
                f"{stream_label(number, stream)}  ({len(stream.text)} characters{flagged})"
            )
            item.setData(_ROLE_NUMBER, number)
            self._list.addItem(item)
        self._list.blockSignals(False)
        silent = sum(1 for s in streams if not s.text)
        self._silent.setText(f"{silent} window(s) without typing not listed" if silent else "")
        self._text.setPlaceholderText("Nothing was typed in this session.")
        rows = [self._list.item(r).data(_ROLE_NUMBER) for r in range(self._list.count())]
        row = rows.index(current) if current in rows else 0
        if rows:
            self._list.setCurrentRow(row)
        self._on_stream()

    def _on_stream(self, *_: object) -> None:
        item = self._list.currentItem()
        self._number = None if item is None else int(item.data(_ROLE_NUMBER))
        if self._number is None:
            self._text.setPlainText("")
            self._legend.clear()
            self._marks.clear()
        else:
            index = self._number - 1
            self._show(self._streams[index], self._detections[index], self._cuts[index])
        self.selection_changed.emit()

    def _show(self, stream: StreamText, found: Sequence[Detection], cuts: Sequence[int]) -> None:
        shown = display_text(stream.text)
        self._offsets = _Offsets(shown)
        # Else the new text takes the format where the cursor was (a detection's shade).
        self._text.setCurrentCharFormat(QTextCharFormat())
        self._text.setPlainText(shown)
        for detection in found:
            fmt = QTextCharFormat()
            if detection.withheld:
                fmt.setBackground(PII_COLOURS[detection.finding.category])
                fmt.setForeground(QColor(Qt.GlobalColor.black))
            else:
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DashUnderline)
                fmt.setUnderlineColor(_RELEASED_COLOUR)
            self._cursor(detection.finding.start, detection.finding.end).mergeCharFormat(fmt)
        removed = self._show_cuts(stream, cuts)
        self._show_marks(stream, removed)
        self._legend.setText(_legend(found))

    def _show_cuts(self, stream: StreamText, cuts: Sequence[int]) -> str:
        """A red wavy underline on the character after each cut (before it, at
        the end); returns the note that says so, or ""."""
        if not cuts or not stream.text:
            return ""
        wave = QTextCharFormat()
        wave.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        wave.setUnderlineColor(_CUT_COLOUR)
        for cut in cuts:
            at = min(cut, len(stream.text) - 1)
            self._cursor(at, at + 1).mergeCharFormat(wave)
        places = "1 place" if len(cuts) == 1 else f"{len(cuts)} places"
        return f"Removed by you: text at {places} (red wavy underline)."

    def _show_marks(self, stream: StreamText, removed: str = "") -> None:
        """Copy and cut leave a dotted underline on the character before them, a
        paste its sign; the note below the text says so, after `removed`."""
        for mark in stream.marks:
            if mark.kind is MarkKind.PASTE or not stream.text:
                continue
            at = min(max(mark.offset - 1, 0), len(stream.text) - 1)
            fmt = QTextCharFormat()
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
            fmt.setUnderlineColor(_MARK_COLOUR)
            self._cursor(at, at + 1).mergeCharFormat(fmt)
        sign = QTextCharFormat()
        sign.setForeground(_MARK_COLOUR)
        sign.setFontWeight(QFont.Weight.Bold)
        for i, ch in enumerate(stream.text):
            if ch == PLACEHOLDER:
                self._cursor(i, i + 1).mergeCharFormat(sign)
        kinds = Counter(mark.kind for mark in stream.marks)
        if not kinds:
            self._marks.setText(removed)
            return
        done = ", ".join(
            f"{verb} {kinds[kind]}×"
            for kind, verb in (
                (MarkKind.COPY, "copied"),
                (MarkKind.CUT, "cut"),
                (MarkKind.PASTE, f"pasted ({PASTE_SIGN})"),
            )
            if kinds[kind]
        )
        clipboard = f"Clipboard: {done}. What was on the clipboard is never recorded."
        self._marks.setText(f"{removed} {clipboard}" if removed else clipboard)

    def _cursor(self, start: int, end: int) -> QTextCursor:
        cursor = QTextCursor(self._text.document())
        cursor.setPosition(self._offsets.to_qt(start))
        cursor.setPosition(self._offsets.to_qt(end), QTextCursor.MoveMode.KeepAnchor)
        return cursor

    # -- what the person chose ------------------------------------------------------------------

    def current_stream(self) -> int | None:
        """The stream shown, numbered from 1 as the service numbers them."""
        return self._number

    def selected_span(self) -> tuple[int, int, int] | None:
        """(stream number from 1, start, end) of the selected text, or None."""
        cursor = self._text.textCursor()
        if self._number is None or not cursor.hasSelection():
            return None
        start = self._offsets.to_py(cursor.selectionStart())
        end = self._offsets.to_py(cursor.selectionEnd())
        return (self._number, start, end) if start < end else None

    def select_span(self, number: int, start: int, end: int) -> None:
        """Show stream `number` with [start, end) selected, as a person would select it."""
        for row in range(self._list.count()):
            if self._list.item(row).data(_ROLE_NUMBER) == number:
                self._list.setCurrentRow(row)
                self._text.setTextCursor(self._cursor(start, end))
                return
        raise ValueError(f"stream {number} is not listed")

    def detection_at_cursor(self) -> Detection | None:
        """The detection the text cursor (or the selection) lies in, if any."""
        if self._number is None:
            return None
        cursor = self._text.textCursor()
        start = self._offsets.to_py(cursor.selectionStart())
        end = self._offsets.to_py(cursor.selectionEnd())
        for detection in self._detections[self._number - 1]:
            if detection.finding.start <= start and end <= detection.finding.end:
                return detection
        return None

    def span_line(self, number: int, start: int, end: int) -> str:
        """Where and what [start, end) of stream `number` is, for the confirmation."""
        if not 1 <= number <= len(self._streams):
            return f"{number}. (a window this view does not show; refresh to see it)"
        stream = self._streams[number - 1]
        return f"{stream_label(number, stream)}: {display_text(stream.text[start:end])}"


def _legend(detections: Sequence[Detection]) -> str:
    """Rich text: a swatch per category found, with how often, and what leaves."""
    if not detections:
        return "No personal data or secrets detected in this text."
    found = Counter(d.finding.category for d in detections)
    swatches = " ".join(
        f'<span style="background-color:{PII_COLOURS[c].name()}; color:black">'
        f"&nbsp;{html.escape(c.value.replace('_', ' '))} {n}&nbsp;</span>"
        for c, n in sorted(found.items(), key=lambda item: item[0].value)
    )
    withheld = sum(d.withheld for d in detections)
    leaving = len(detections) - withheld
    fate = f"Shaded: removed from what is uploaded ({withheld})."
    if leaving:
        fate += f" Underlined: uploaded as typed ({leaving})."
    return f"Detected: {swatches}<br>{fate}"
