"""The audit report as a PDF for filing (REPORT_DIR/report.pdf): the same blocks as
the HTML (org/report_model.py), laid out by reportlab's platypus.

Why reportlab: the long-maintained PDF library of the Python world, pure
Python with its own fonts (the 14 standard PDF fonts, nothing to embed or
fetch). `invariant` is set, so the file carries no creation time or random
id and the same coverage gives the same bytes. Charts go in as PNG (150 dpi)
rendered by matplotlib. Every string is escaped before platypus parses it as
its paragraph markup.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from cleartrace.org.report_charts import png
from cleartrace.org.report_model import DEFAULT_K, Chart, Heading, Para, Report, Table, build

__all__ = ["render", "render_pdf"]

_PAGE = landscape(A4)
_MARGIN = 12 * mm
_WIDTH = _PAGE[0] - 2 * _MARGIN
_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=8.5, leading=10.5)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7, leading=8.5, wordWrap="CJK")
_HEAD = ParagraphStyle("head", parent=_CELL, fontName="Helvetica-Bold")
_CAPTION = ParagraphStyle("caption", parent=_BODY, fontName="Helvetica-Bold", spaceBefore=4)
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef3f1")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
)


def _text(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[float]:
    """Column widths in proportion to their longest cell (capped), filling the page."""
    weights = [min(max([len(h), *(len(r[i]) for r in rows)]), 70) + 4 for i, h in enumerate(header)]
    total = sum(weights)
    return [_WIDTH * w / total for w in weights]


def _table(block: Table) -> list[Flowable]:
    caption = _text(block.caption, _CAPTION)
    if not block.rows:
        return [caption, _text(block.empty, _BODY), Spacer(1, 4 * mm)]
    data = [[_text(h, _HEAD) for h in block.header]]
    data += [[_text(cell, _CELL) for cell in row] for row in block.rows]
    table = PdfTable(data, colWidths=_widths(block.header, block.rows), repeatRows=1)
    table.setStyle(_GRID)
    return [caption, table, Spacer(1, 4 * mm)]


def _chart(block: Chart) -> list[Flowable]:
    width_in, height_in = block.figure.get_size_inches()
    scale = min(_WIDTH / (width_in * 72), (_PAGE[1] - 2 * _MARGIN - 20 * mm) / (height_in * 72))
    image = Image(
        io.BytesIO(png(block.figure)), width=width_in * 72 * scale, height=height_in * 72 * scale
    )
    return [KeepTogether([_text(block.caption, _CAPTION), image]), Spacer(1, 4 * mm)]


def render(report: Report) -> bytes:
    """The PDF document of `report`."""
    story: list[Flowable] = [_text(report.title, _STYLES["Title"])]
    for block in report.blocks:
        if isinstance(block, Heading):
            story.append(_text(block.text, _STYLES["Heading2"]))
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
