"""The blocks an audit report is made of (headings, paragraphs, tables, charts): what
org/report_model.py and org/report_org_ledger.py build and both renderers lay out.

Strings are kept raw here; each renderer escapes every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

__all__ = ["Block", "Chart", "Heading", "Para", "Table"]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "none"


@dataclass(frozen=True)
class Chart:
    caption: str
    figure: Figure


Block = Heading | Para | Table | Chart
