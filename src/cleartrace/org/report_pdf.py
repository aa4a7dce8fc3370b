"""The audit report as a PDF for filing (REPORT_DIR/report.pdf): the same blocks as
the HTML (org/report_model.py), laid out by reportlab's platypus.

Why reportlab: the long-maintained PDF library of the Python world, pure
Python with its own fonts (the 14 standard PDF fonts, nothing to embed or
fetch). `invariant` is set, so the file carries no creation time or random
id and the same coverage gives the same bytes. Charts go in as 100 dpi
images rendered by matplotlib. Every string is escaped before platypus parses it as
its paragraph markup.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from cleartrace.org.report_charts import Overlay, raster
from cleartrace.org.report_model import DEFAULT_K, Chart, Heading, Para, Report, Table, build

__all__ = ["render", "render_pdf"]

_PAGE = landscape(A4)
_MARGIN = 12 * mm
_WIDTH = _PAGE[0] - 2 * _MARGIN
_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=8.5, leading=10.5)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7, leading=8.5)
_HEAD = ParagraphStyle("head", parent=_CELL, fontName="Helvetica-Bold")
_CAPTION = ParagraphStyle("caption", parent=_BODY, fontName="Helvetica-Bold", spaceBefore=4)
#: Room a heading or a table's caption needs below it, else it starts the next page
#: (so it is never left alone at the foot of one).
_ROOM = 30 * mm
#: A chart label the PDF sets itself (report_charts.Overlay): the tables' face.
_LABEL_FONT = "Helvetica"
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef3f1")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("FONTSIZE", (0, 1), (-1, -1), 7),
        ("LEADING", (0, 1), (-1, -1), 8.5),
    ]
)


def _text(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _widths(block: Table) -> tuple[list[float], list[list[float]]]:
    """Column widths filling the page, each in proportion to its widest cell
    (capped), and every cell's own width (measured once)."""
    measured = [
        [stringWidth(cell, _CELL.fontName, _CELL.fontSize) for cell in row] for row in block.rows
    ]
    needed = [
        min(max([stringWidth(h, _HEAD.fontName, _HEAD.fontSize), *(m[i] for m in measured)]),
            300.0) + 8
        for i, h in enumerate(block.header)
    ]  # fmt: skip
    total = sum(needed)
    if total <= _WIDTH:
        return [w + (_WIDTH - total) / len(needed) for w in needed], measured
    # Too wide: the columns narrower than an even share keep their width, the
    # wide ones share what is left in proportion.
    fair = _WIDTH / len(needed)
    room = _WIDTH - sum(w for w in needed if w <= fair)
    share = room / sum(w for w in needed if w > fair)
    return [w if w <= fair else w * share for w in needed], measured


def _table(block: Table) -> list[Flowable]:
    caption = _text(block.caption, _CAPTION)
    if not block.rows:
        return [CondPageBreak(_ROOM), caption, _text(block.empty, _BODY), Spacer(1, 4 * mm)]
    widths, measured = _widths(block)
    # A cell that fits its column stays a plain string (laid out ten times faster
    # than a paragraph); a longer one becomes a paragraph that wraps.
    data: list[list[Any]] = [[_text(h, _HEAD) for h in block.header]]
    data += [
        [
            cell if width <= column - 6 else _text(cell, _CELL)
            for cell, width, column in zip(row, sizes, widths, strict=True)
        ]
        for row, sizes in zip(block.rows, measured, strict=True)
    ]
    table = PdfTable(data, colWidths=widths, repeatRows=1)
    table.setStyle(_GRID)
    return [CondPageBreak(_ROOM), caption, table, Spacer(1, 4 * mm)]


class _Picture(Flowable):  # type: ignore[misc]  # reportlab is untyped
    """A chart's pixels drawn at a size, then what its `Overlay` sets over them:
    platypus' Image takes only files, which would mean encoding the chart to
    PNG for reportlab to decode it again."""

    def __init__(
        self, image: ImageReader, overlay: Overlay, width: float, height: float, scale: float
    ) -> None:
        super().__init__()
        self.image, self.overlay = image, overlay
        self.width, self.height, self.scale = width, height, scale

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        w, h = self.width, self.height
        self.canv.drawImage(self.image, 0, 0, width=w, height=h)
        for pixels, (x0, y0, x1, y1) in self.overlay.images:
            self.canv.drawImage(
                ImageReader(pixels), x0 * w, y0 * h, width=(x1 - x0) * w, height=(y1 - y0) * h
            )
        for label in self.overlay.labels:
            size = label.size * self.scale
            self.canv.setFont(_LABEL_FONT, size)
            # Its middle on the line matplotlib centred it on (cap height ~0.7 em).
            self.canv.drawRightString(label.right * w, label.middle * h - 0.35 * size, label.text)


def _chart(block: Chart) -> list[Flowable]:
    width_in, height_in = block.figure.get_size_inches()
    scale = min(_WIDTH / (width_in * 72), (_PAGE[1] - 2 * _MARGIN - 20 * mm) / (height_in * 72))
    pixels, overlay = raster(block.figure)
    image = _Picture(
        ImageReader(pixels), overlay, width_in * 72 * scale, height_in * 72 * scale, scale
    )
    return [KeepTogether([_text(block.caption, _CAPTION), image]), Spacer(1, 4 * mm)]


def render(report: Report) -> bytes:
    """The PDF document of `report`."""
    story: list[Flowable] = [_text(report.title, _STYLES["Title"])]
    for block in report.blocks:
        if isinstance(block, Heading):
            # Room for the heading and for what the first block under it asks.
            story += [CondPageBreak(_ROOM + 15 * mm), _text(block.text, _STYLES["Heading2"])]
        elif isinstance(block, Para):
            story.append(_text(block.text, _BODY))
        elif isinstance(block, Chart):
            story += _chart(block)
        else:
            story += _table(block)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=_PAGE,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=report.title,
        author="ClearTrace",
        creator="ClearTrace",
        invariant=True,
    )
    doc.build(story)
    return buf.getvalue()


def render_pdf(coverage: Mapping[str, Any], k: int = DEFAULT_K) -> bytes:
    """report.pdf for `coverage` (the dict coverage.json holds)."""
    return render(build(coverage, k))
