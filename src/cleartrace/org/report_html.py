"""The audit report as one self-contained HTML file (REPORT_DIR/index.html).

One file, nothing fetched: the style is inline, the charts are inline SVG
(org/report_charts.py; a consent timeline's spells one PNG inside it, as a
`data:` URI), no script, no font, nothing fetched. Every string from
the coverage is escaped (`html.escape`, quotes included), so a policy id or a
rejection detail written by someone hostile is shown, never interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from cleartrace.org.report_charts import svg
from cleartrace.org.report_model import DEFAULT_K, Block, Chart, Heading, Para, Report, Table, build

__all__ = ["render", "render_html"]

_XMLNS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')
#: The RDF metadata block matplotlib writes (format and type, with their vocabularies' URLs).
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)

_STYLE = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:14px;color:#1b1b1b;
margin:24px auto;max-width:1200px;padding:0 16px;line-height:1.4}
h1{font-size:24px;margin:0 0 8px}h2{font-size:19px;margin:28px 0 8px;
border-bottom:2px solid #009E73;padding-bottom:2px}
table{border-collapse:collapse;margin:6px 0 18px;width:100%}
caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #c8c8c8;padding:3px 6px;text-align:left;vertical-align:top;
}
td.id{overflow-wrap:anywhere;font-family:"DejaVu Sans Mono",monospace;font-size:12px}
th{background:#eef3f1}tr:nth-child(even) td{background:#fafafa}
figure{margin:8px 0 20px}figcaption{font-weight:bold;padding:4px 0}
figure svg{max-width:100%;height:auto}
.none{color:#666;font-style:italic}
"""


def _inline(block: Chart) -> str:
    """The chart's SVG for inlining, its namespace declarations and RDF metadata
    dropped (HTML's parser puts <svg> and xlink:href in their namespaces
    itself), so the file names no URL."""
    text = svg(block.figure)
    head, rest = text.split(">", 1)
    return _XMLNS.sub("", head) + ">" + _METADATA.sub("", rest, count=1)


def _cell(text: str) -> str:
    """A table cell; a long unbroken value (a fingerprint, a bundle name, a file) in
    monospace, allowed to break anywhere so the other columns keep their width."""
    if len(text) > 24 and " " not in text:
        return f'<td class="id">{escape(text)}</td>'
    return f"<td>{escape(text)}</td>"


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Chart):
        return f"<figure><figcaption>{escape(block.caption)}</figcaption>{_inline(block)}</figure>"
    assert isinstance(block, Table)
    head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
    if not block.rows:
        body = f'<tr><td class="none" colspan="{len(block.header)}">{escape(block.empty)}</td></tr>'
    else:
        body = "\n".join(
            "<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in block.rows
        )
    return (
        f"<table><caption>{escape(block.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
    )


def render(report: Report) -> str:
    """The HTML document of `report`."""
    parts = "\n".join(_block(b) for b in report.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No request leaves the page, whatever it holds.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escape(report.title)}</h1>\n{parts}\n</body></html>\n"
    )


def render_html(coverage: Mapping[str, Any], k: int = DEFAULT_K) -> str:
    """index.html for `coverage` (the dict coverage.json holds)."""
    return render(build(coverage, k))
