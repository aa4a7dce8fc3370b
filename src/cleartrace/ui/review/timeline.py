"""A session's activity as a picture, and a time range the person drags on it.

The picture is drawn from the per-minute counts (`MinuteActivity`), never
from events: an eight-hour session is 480 columns however many million
events it holds. The static layer is cached in a pixmap, so dragging a range
repaints only the overlay.
"""

# ruff: noqa: N802 — Qt's event handlers (paintEvent, mousePressEvent, ...) keep Qt's names.

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QToolTip, QWidget

from cleartrace.actions.sessions import SessionReview
from cleartrace.review.activity import MINUTE_NS, MinuteActivity
from cleartrace.ui.review._format import clock

__all__ = ["CATEGORY_COLOURS", "Timeline", "TimelineData"]

_SECOND_NS = 10**9

#: Stacked from the bottom in this order.
CATEGORY_COLOURS: dict[str, QColor] = {
    "keys": QColor("#3b6fc4"),
    "moves": QColor("#8fb86a"),
    "clicks": QColor("#e8862a"),
    "scrolls": QColor("#9b5fc0"),
}
_EXCLUDED = QColor(120, 120, 120, 70)
_REDACTED = QColor("#b03030")
_SELECTION = QColor(40, 110, 220, 60)
_SELECTION_EDGE = QColor(40, 110, 220)

# Tick steps the axis may use, in seconds: the first at least _TICK_PX apart wins.
_TICK_STEPS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_TICK_PX = 70
_MARGIN = 8
_LEGEND_H = 18
_AXIS_H = 20
_DRAG_PX = 3  # a press and release closer than this is a click: it clears the range


@dataclass(frozen=True, slots=True)
class TimelineData:
    """What the timeline paints, all on the wall clock: per-minute counts, the
    span shown, and the intervals redactions removed."""

    minutes: tuple[MinuteActivity, ...]
    first_ns: int  # where minute 0 starts: the session's first event
    start_ns: int
    end_ns: int
    redacted: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, review: SessionReview) -> TimelineData:
        """Built on the worker thread, from what the review folded."""
        info = review.info
        first = info.started_ns if review.first_ns is None else review.first_ns
        last = first + len(review.activity) * MINUTE_NS
        end = max(last, info.ended_ns or last, first + MINUTE_NS)
        return cls(
            minutes=tuple(review.activity),
            first_ns=first,
            start_ns=min(first, info.started_ns),
            end_ns=end,
            redacted=tuple((r.from_ns, r.to_ns) for r in review.redactions if r.count),
        )


def _counts(m: MinuteActivity) -> tuple[int, int, int, int]:
    return (m.keys, m.moves, m.clicks, m.scrolls)


class Timeline(QWidget):
    """Activity per minute stacked by category, excluded minutes shaded,
    redacted intervals hatched, a time axis, and a draggable range.

    Heights are log-scaled per category, so a minute of typing still shows
    beside the thousands of mouse moves of the same minute; the tooltip
    gives the exact counts.
    """

    #: (start_ns, end_ns) on the wall clock, or None when the range is cleared.
    range_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self.setMinimumSize(240, 110)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Activity timeline")
        self.setAccessibleDescription(
            "Drag, or use Shift with the arrow keys, to choose a time range; Escape clears it."
        )
        self._data: TimelineData | None = None
        self._scale = 1.0  # the tallest minute's stacked log height
        self._cache: QPixmap | None = None
        self._range: tuple[int, int] | None = None
        self._anchor: int | None = None  # where a drag or a Shift+arrow selection began
        self._caret: int | None = None
        self._dragging = False
        self._press_x = 0.0

    # -- data and range ---------------------------------------------------------------

    def set_data(self, data: TimelineData | None) -> None:
        """Show another session (or none); the range is cleared."""
        self._data = data
        self._scale = 1.0
        if data is not None and data.minutes:
            self._scale = max(sum(math.log1p(n) for n in _counts(m)) for m in data.minutes) or 1.0
        self._cache = None
        self._caret = None
        self.clear_range()
        self.update()

    def data(self) -> TimelineData | None:
        return self._data

    def selected_range(self) -> tuple[int, int] | None:
        """The dragged range as (start_ns, end_ns) on the wall clock, start < end."""
        return self._range

    def clear_range(self) -> None:
        changed = self._range is not None
        self._range = self._anchor = None
        self._dragging = False
        self.update()
        if changed:
            self.range_changed.emit(None)

    # -- geometry -------------------------------------------------------------------------

    def _plot(self) -> QRectF:
        return QRectF(
            _MARGIN,
            _LEGEND_H + 4,
            max(1, self.width() - 2 * _MARGIN),
            max(1, self.height() - _LEGEND_H - 4 - _AXIS_H),
        )

    def x_for(self, ns: int) -> float:
        """Where wall-clock time `ns` is drawn (may lie outside the widget)."""
        if self._data is None:
            return 0.0
        plot, span = self._plot(), self._data.end_ns - self._data.start_ns
        return plot.left() + (ns - self._data.start_ns) / span * plot.width()

    def time_at(self, x: float) -> int:
        """The wall-clock time under `x`, clamped to the span shown."""
        if self._data is None:
            return 0
        plot, data = self._plot(), self._data
        share = min(1.0, max(0.0, (x - plot.left()) / plot.width()))
        return data.start_ns + round(share * (data.end_ns - data.start_ns))

    def sizeHint(self) -> QSize:
        return QSize(720, 130)

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        dpr = self.devicePixelRatioF()
        if self._cache is None or self._cache.size() != self.size() * dpr:
            self._cache = self._render_static(dpr)
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._cache)
        plot = self._plot()
        if self._range is not None:
            x0, x1 = self.x_for(self._range[0]), self.x_for(self._range[1])
            band = QRectF(x0, plot.top(), max(1.0, x1 - x0), plot.height())
            painter.fillRect(band, _SELECTION)
            painter.setPen(QPen(_SELECTION_EDGE, 1))
            painter.drawRect(band)
        if self._caret is not None and self.hasFocus():
            x = self.x_for(self._caret)
            painter.setPen(QPen(self.palette().text().color(), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        painter.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._cache = None
        super().resizeEvent(event)

    def _render_static(self, dpr: float) -> QPixmap:
        pixmap = QPixmap(self.size() * dpr)
        pixmap.setDevicePixelRatio(dpr)
        pixmap.fill(self.palette().base().color())
        painter = QPainter(pixmap)
        self._paint_legend(painter)
        data = self._data
        if data is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self._plot(), Qt.AlignmentFlag.AlignCenter, "No session chosen")
        else:
            self._paint_minutes(painter, data)
            self._paint_redacted(painter, data)
            self._paint_axis(painter, data)
        painter.end()
        return pixmap

    def _paint_legend(self, painter: QPainter) -> None:
        x = float(_MARGIN)
        metrics = painter.fontMetrics()
        entries: list[tuple[str, QBrush]] = [
            (name, QBrush(colour)) for name, colour in CATEGORY_COLOURS.items()
        ]
        entries += [
            ("excluded", QBrush(_EXCLUDED)),
            ("redacted", QBrush(_REDACTED, Qt.BrushStyle.BDiagPattern)),
        ]
        painter.setPen(self.palette().text().color())
        for name, brush in entries:
            painter.fillRect(QRectF(x, 4, 10, 10), brush)
            painter.drawText(QPointF(x + 14, 13), name)
            x += 14 + metrics.horizontalAdvance(name) + 14

    def _paint_minutes(self, painter: QPainter, data: TimelineData) -> None:
        plot = self._plot()
        colours = list(CATEGORY_COLOURS.values())
        for m in data.minutes:
            x0 = self.x_for(data.first_ns + m.minute * MINUTE_NS)
            x1 = self.x_for(data.first_ns + (m.minute + 1) * MINUTE_NS)
            width = max(1.0, x1 - x0 - (1 if x1 - x0 > 4 else 0))  # a gap when there is room
            if m.excluded:
                painter.fillRect(QRectF(x0, plot.top(), width, plot.height()), _EXCLUDED)
            y = plot.bottom()
            for n, colour in zip(_counts(m), colours, strict=True):
                if n:
                    h = math.log1p(n) / self._scale * plot.height()
                    painter.fillRect(QRectF(x0, y - h, width, h), colour)
                    y -= h

    def _paint_redacted(self, painter: QPainter, data: TimelineData) -> None:
        plot = self._plot()
        painter.setPen(QPen(_REDACTED, 1))
        brush = QBrush(_REDACTED, Qt.BrushStyle.BDiagPattern)
        for start, end in data.redacted:
            x0, x1 = self.x_for(start), self.x_for(end)
            band = QRectF(x0, plot.top(), max(2.0, x1 - x0), plot.height())
            painter.fillRect(band, brush)
            painter.drawLine(QPointF(x0, plot.top()), QPointF(x0, plot.bottom()))

    def _paint_axis(self, painter: QPainter, data: TimelineData) -> None:
        plot = self._plot()
        painter.setPen(self.palette().mid().color())
        painter.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.bottom()))
        span_s = (data.end_ns - data.start_ns) / _SECOND_NS
        step = next(
            (s for s in _TICK_STEPS if s / span_s * plot.width() >= _TICK_PX), _TICK_STEPS[-1]
        )
        offset = datetime.fromtimestamp(data.start_ns / _SECOND_NS).astimezone().utcoffset()
        offset_ns = int(offset.total_seconds()) * _SECOND_NS if offset else 0
        step_ns = step * _SECOND_NS
        # Ticks fall on round local times (10:00, 10:15), not on the session's start.
        tick = -(-(data.start_ns + offset_ns) // step_ns) * step_ns - offset_ns
        painter.setPen(self.palette().text().color())
        while tick <= data.end_ns:
            x = self.x_for(tick)
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            label = clock(tick, seconds=step < 60)
            painter.drawText(QPointF(x + 2, plot.bottom() + 16), label)
            tick += step_ns

    # -- the range: mouse and keyboard --------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._data is None or event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        x = event.position().x()
        self._dragging, self._press_x = True, x
        self._anchor = self._caret = self.time_at(x)
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        # Tracked with our own flag: synthetic moves (tests, some tablets) carry no buttons.
        if self._dragging:
            self._drag_to(event.position().x())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if not self._dragging or event.button() != Qt.MouseButton.LeftButton:
            super().mouseReleaseEvent(event)
            return
        x = event.position().x()
        self._dragging = False
        if abs(x - self._press_x) < _DRAG_PX:
            self.clear_range()
            return
        self._drag_to(x)
        self.range_changed.emit(self._range)

    def _drag_to(self, x: float) -> None:
        if self._anchor is None:
            return
        self._caret = self.time_at(x)
        self._range = self._ordered(self._anchor, self._caret)
        self.update()

    @staticmethod
    def _ordered(a: int, b: int) -> tuple[int, int] | None:
        return (min(a, b), max(a, b)) if a != b else None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        data, key = self._data, event.key()
        if data is None:
            super().keyPressEvent(event)
            return
        if key == Qt.Key.Key_Escape and self._range is not None:
            self.clear_range()
            return
        if key not in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            super().keyPressEvent(event)
            return
        step = min(MINUTE_NS, (data.end_ns - data.start_ns) // 10)  # a minute, or a tenth
        caret = data.start_ns if self._caret is None else self._caret
        moved = caret + (step if key == Qt.Key.Key_Right else -step)
        moved = min(data.end_ns, max(data.start_ns, moved))
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            if self._anchor is None or self._range is None:
                self._anchor = caret
            self._caret = moved
            self._range = self._ordered(self._anchor, moved)
            self.range_changed.emit(self._range)
        else:
            self._caret = moved
        self.update()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self._tooltip(event.pos().x())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def _tooltip(self, x: float) -> str | None:
        data = self._data
        if data is None or not data.minutes:
            return None
        minute = (self.time_at(x) - data.first_ns) // MINUTE_NS
        if not 0 <= minute < len(data.minutes):
            return None
        m = data.minutes[minute]
        counts = ", ".join(
            f"{name} {n}" for name, n in zip(CATEGORY_COLOURS, _counts(m), strict=True)
        )
        shaded = " (partly excluded)" if m.excluded else ""
        return f"{clock(data.first_ns + minute * MINUTE_NS)}: {counts}{shaded}"
