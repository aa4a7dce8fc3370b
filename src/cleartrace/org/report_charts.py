"""The audit report's charts, drawn with matplotlib and rendered to an SVG string
(the HTML report inlines it) or to 150 dpi pixels (the PDF embeds them).

Why matplotlib: the well-kept plotting library of the field; its SVG backend
writes a self-contained document (no fonts or scripts fetched). Only the
object-oriented API is used (`Figure.savefig` to SVG or PNG, which take the
SVG and Agg canvases): no pyplot, so no GUI backend is ever chosen or
loaded. Fonts (DejaVu Sans, which matplotlib ships), the SVG id salt and
the metadata are fixed, so the same coverage gives the same bytes.

Labels are fingerprints and category names only, and mathtext is off, so a
string from a ledger is never parsed as markup.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import matplotlib
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.dates import date2num as _date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "Interval",
    "Timeline",
    "fleet_consent_chart",
    "raster",
    "svg",
    "timeline_chart",
]

#: Fixed rendering settings: deterministic output, no text parsed as math.
RC: Any = {  # matplotlib types its keys as a Literal of every rcParam name
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "svg.hashsalt": "cleartrace-audit-report",
    "svg.fonttype": "none",  # text as <text>: small, fast, searchable
    "text.parse_math": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
}
#: Consented, paused, withdrawn: colour-blind safe (Okabe-Ito) green, orange, vermilion.
COLOURS = {"consented": "#009E73", "paused": "#E69F00", "withdrawn": "#D55E00"}
_PNG_DPI = 150


@dataclass(frozen=True)
class Interval:
    """A spell from `start` to `end` (datetimes, UTC)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Timeline:
    """One device's consent picture: per category its consented, paused and withdrawn spells."""

    label: str
    lanes: Mapping[str, Mapping[str, Sequence[Interval]]]


def date2num(when: datetime) -> float:
    """matplotlib's date number of `when` (its own function is untyped)."""
    return float(_date2num(when))  # type: ignore[no-untyped-call]


def _axis_time(ax: Axes, start: datetime, end: datetime) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlim(date2num(start), date2num(end))


def timeline_chart(
    timelines: Sequence[Timeline], categories: Sequence[str], start: datetime, end: datetime
) -> Figure:
    """Per device one band, in it one lane per category: consented (green),
    paused (orange), withdrawn (vermilion) spells across `start`..`end`.

    One collection of rectangles per state and fixed margins (no layout
    pass): a fleet of a thousand devices draws in a second, not a minute."""
    with matplotlib.rc_context(RC):
        lanes = len(categories)
        height = 0.6 + (0.07 * lanes + 0.12) * len(timelines)
        fig = Figure(figsize=(10, max(1.6, height)))
        fig.subplots_adjust(
            left=1.3 / 10, right=1 - 1.2 / 10, bottom=0.45 / fig.get_figheight(),
            top=1 - 0.1 / fig.get_figheight(),
        )  # fmt: skip
        ax = fig.add_subplot()
        boxes: dict[str, list[list[tuple[float, float]]]] = {state: [] for state in COLOURS}
        ticks, labels = [], []
        row = 0.0
        for timeline in reversed(timelines):
            for i, category in enumerate(reversed(categories)):
                spells = timeline.lanes.get(category, {})
                y0, y1 = row + i, row + i + 0.8
                for state, found in boxes.items():
                    for s in spells.get(state, ()):
                        x0, x1 = date2num(s.start), date2num(s.end)
                        found.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
                if len(timelines) == 1:
                    ticks.append(row + i + 0.4)
                    labels.append(category)
            if len(timelines) > 1:
                ticks.append(row + lanes / 2)
                labels.append(timeline.label)
            row += lanes + 1.5
        for state, found in boxes.items():
            if found:
                ax.add_collection(
                    PolyCollection(found, facecolors=COLOURS[state], edgecolors=COLOURS[state],
                                   linewidths=0.3)
                )  # fmt: skip
        ax.set_yticks(ticks, labels)
        ax.set_ylim(-0.5, max(row - 1, 1))
        _axis_time(ax, start, end)
        handles = [Patch(color=colour, label=state) for state, colour in COLOURS.items()]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return fig


def fleet_consent_chart(
    series: Mapping[str, Sequence[tuple[datetime, int]]], start: datetime, end: datetime
) -> Figure:
    """Per category (one small panel each, same scales), the number of devices
    consented and recording over time, as a step line."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(10, 3.6))
        columns = 3
        rows = max(1, -(-len(series) // columns))
        axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
        top = max([n for steps in series.values() for _, n in steps] + [1])
        for ax, (category, steps) in zip(axes.flat, series.items(), strict=False):
            if steps:
                xs = [date2num(t) for t, _ in steps] + [date2num(end)]
                ys = [n for _, n in steps] + [steps[-1][1]]
                ax.fill_between(xs, ys, step="post", color=COLOURS["consented"], alpha=0.25)
                ax.step(xs, ys, where="post", color=COLOURS["consented"], linewidth=1.4)
            ax.set_title(category, loc="left", fontsize=8)
            ax.set_ylim(0, top * 1.1)
            ax.yaxis.get_major_locator().set_params(integer=True)
            _axis_time(ax, start, end)
        for ax in axes.flat[len(series) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("devices")
        fig.tight_layout()
        return fig


def svg(fig: Figure) -> str:
    """The figure as an SVG document without the XML prolog, to inline in HTML."""
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg") :]


def raster(fig: Figure) -> PIL.Image.Image:
    """The figure drawn at 150 dpi as an RGB image, for the PDF: handed to
    reportlab as pixels, it is not encoded to PNG and decoded again."""
    with matplotlib.rc_context(RC):
        fig.set_dpi(_PNG_DPI)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # type: ignore[no-untyped-call]
        image = PIL.Image.frombuffer(
            "RGBA",
            canvas.get_width_height(),
            canvas.buffer_rgba(),  # type: ignore[no-untyped-call]
            "raw",
            "RGBA",
            0,
            1,
        )
    return image.convert("RGB")
