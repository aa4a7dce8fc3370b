"""The audit report's charts, drawn with matplotlib and rendered to an SVG string
(the HTML report inlines it) or to 100 dpi pixels (the PDF embeds them).

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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import matplotlib
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.dates import date2num as _date2num
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import blended_transform_factory

__all__ = [
    "Interval",
    "Label",
    "Overlay",
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
_PNG_DPI = 100
#: The gid of what the PDF draws itself over a chart's pixels (see `raster`).
_OVERLAID = "cleartrace-overlaid"
#: Pixel rows per category lane of a consent timeline (the last one left clear).
_LANE = 4
#: Time columns of a consent timeline: one per pixel of its axes (7.5 in wide) at
#: 100 dpi, so a spell one column wide is still a pixel in the PDF.
_COLUMNS = 750
_RGBA = {
    state: np.array([*(int(colour[i : i + 2], 16) for i in (1, 3, 5)), 255], dtype=np.uint8)
    for state, colour in COLOURS.items()
}


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


#: matplotlib's date number of the Unix epoch (0.0 with its default date.epoch).
_EPOCH = float(_date2num(datetime(1970, 1, 1, tzinfo=UTC)))  # type: ignore[no-untyped-call]


def date2num(when: datetime) -> float:
    """matplotlib's date number of `when` (days since its epoch), by arithmetic:
    its own function converts through numpy per call, and a fleet's timelines
    hold hundreds of thousands of spells."""
    return _EPOCH + when.timestamp() / 86400.0


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

    Drawn as one image of `_COLUMNS` time columns (`imshow`, no resampling:
    crisp in SVG and in pixels), each spell at least one column wide, so a
    spell of minutes in a span of months stays visible. A thousand devices
    with hundreds of spells each draw in well under a second, where one
    rectangle per spell took minutes and megabytes of SVG."""
    lanes = len(categories)
    # Per lane `_LANE` rows, its last left clear; a lane's height between devices.
    band = (lanes + 1) * _LANE
    # No device: one clear band, so the axes still draw (an empty image cannot).
    image = np.zeros((band * max(1, len(timelines)), _COLUMNS, 4), dtype=np.uint8)
    x0, x1 = date2num(start), date2num(end)
    scale = _COLUMNS / max(x1 - x0, 1e-9)
    for b, timeline in enumerate(timelines):
        for i, category in enumerate(categories):
            spells = timeline.lanes.get(category, {})
            top = b * band + i * _LANE
            row = image[top : top + _LANE - 1]
            for state in COLOURS:  # later states paint over earlier ones
                for spell in spells.get(state, ()):
                    s0, s1 = date2num(spell.start), date2num(spell.end)
                    if s1 < x0 or s0 > x1:
                        continue  # wholly outside the span: clamped, it would paint an edge
                    c0 = min(_COLUMNS - 1, max(0, int((s0 - x0) * scale)))
                    c1 = max(c0 + 1, min(_COLUMNS, math.ceil((s1 - x0) * scale)))
                    row[:, c0:c1] = _RGBA[state]
    with matplotlib.rc_context(RC):
        height = 0.6 + (0.07 * lanes + 0.12) * len(timelines)
        fig = Figure(figsize=(10, max(1.6, height)))
        fig.subplots_adjust(
            left=1.3 / 10, right=1 - 1.2 / 10, bottom=0.45 / fig.get_figheight(),
            top=1 - 0.1 / fig.get_figheight(),
        )  # fmt: skip
        ax = fig.add_subplot()
        rows = len(image)
        ax.imshow(
            image,
            extent=(x0, x1, rows - 0.5, -0.5),
            aspect="auto",
            interpolation="none",
            gid=_OVERLAID,
        )
        if len(timelines) == 1:
            ticks = [i * _LANE + (_LANE - 2) / 2 for i in range(lanes)]
            labels = list(categories)
        else:
            ticks = [b * band + (lanes * _LANE - 2) / 2 for b in range(len(timelines))]
            labels = [t.label for t in timelines]
        # Labels as plain text beside the axis: a tick per device (its marks, its
        # label, its layout) cost a thousand devices' report seconds, and says no more.
        ax.set_yticks([])
        at_left = blended_transform_factory(ax.transAxes, ax.transData)
        for y, label in zip(ticks, labels, strict=True):
            ax.text(-0.01, y, label, transform=at_left, ha="right", va="center", gid=_OVERLAID)
        ax.set_ylim(rows - 0.5, -0.5)
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


@dataclass(frozen=True)
class Label:
    """A label the PDF sets as text: its right end and middle as fractions of the
    figure (from its lower left), its size in points at the figure's size."""

    text: str
    right: float
    middle: float
    size: float


@dataclass(frozen=True)
class Overlay:
    """What a chart's PDF page draws over its pixels: images at their own
    resolution, placed at (left, bottom, right, top) fractions of the figure,
    and labels as text."""

    images: list[tuple[PIL.Image.Image, tuple[float, float, float, float]]]
    labels: list[Label]


def raster(fig: Figure) -> tuple[PIL.Image.Image, Overlay]:
    """The figure drawn at 100 dpi as an RGB image, for the PDF, and what the PDF
    sets over it itself: a consent timeline's spells and its labels
    (`timeline_chart` marks them), which Agg would resample and rasterise at a
    tenth of a second a chart, where reportlab embeds the pixels as they are
    and sets text for nothing. Handed to reportlab as pixels, nothing is
    encoded to PNG and decoded again."""
    overlaid = [a for ax in fig.axes for a in (*ax.images, *ax.texts) if a.get_gid() == _OVERLAID]
    with matplotlib.rc_context(RC):
        fig.set_dpi(_PNG_DPI)
        canvas = FigureCanvasAgg(fig)
        for artist in overlaid:
            artist.set_visible(False)
        try:
            canvas.draw()  # type: ignore[no-untyped-call]
        finally:
            for artist in overlaid:
                artist.set_visible(True)
        width, height = canvas.get_width_height()
        image = PIL.Image.frombuffer(
            "RGBA",
            (width, height),
            canvas.buffer_rgba(),  # type: ignore[no-untyped-call]
            "raw",
            "RGBA",
            0,
            1,
        )
        overlay = Overlay([], [])
        for artist in overlaid:
            if isinstance(artist, AxesImage):
                box = artist.get_window_extent()
                spells = np.asarray(artist.get_array())
                rgb = spells[..., :3].copy()
                rgb[spells[..., 3] == 0] = 255  # clear rows: the page's white
                place = (box.x0 / width, box.y0 / height, box.x1 / width, box.y1 / height)
                overlay.images.append((PIL.Image.fromarray(rgb, "RGB"), place))
            elif isinstance(artist, Text):
                x, y = artist.get_transform().transform(artist.get_position())
                size = float(artist.get_fontsize())
                overlay.labels.append(Label(artist.get_text(), x / width, y / height, size))
    return image.convert("RGB"), overlay
