"""The consent timeline picture (org/report_charts.py `timeline_chart`): what its
image paints, read back from the figure's pixels before any rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cleartrace.org.report_charts import Interval, Timeline, raster, svg, timeline_chart

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=10)
#: The timeline's time columns (org/report_charts.py `_COLUMNS`).
COLUMNS = 750


def painted_columns(timelines: list[Timeline]) -> list[int]:
    fig = timeline_chart(timelines, ["keys"], START, END)
    image = np.asarray(fig.axes[0].images[0].get_array())
    return [int(c) for c in np.nonzero(image[:, :, 3].any(axis=0))[0]]


def test_a_spell_wholly_outside_the_span_paints_nothing() -> None:
    before = Interval(START - timedelta(days=5), START - timedelta(days=4))
    after = Interval(END + timedelta(days=1), END + timedelta(days=2))
    device = Timeline("a", {"keys": {"consented": [before], "paused": [after]}})
    assert painted_columns([device]) == []


def test_a_zero_length_spell_inside_the_span_is_one_column_wide() -> None:
    at = START + timedelta(days=5)
    device = Timeline("a", {"keys": {"withdrawn": [Interval(at, at)]}})
    assert painted_columns([device]) == [COLUMNS // 2]


def test_a_spell_across_the_span_is_clipped_to_it() -> None:
    spell = Interval(START - timedelta(days=1), END + timedelta(days=1))
    device = Timeline("a", {"keys": {"consented": [spell]}})
    assert painted_columns([device]) == list(range(COLUMNS))


def test_no_devices_draw_an_empty_chart() -> None:
    assert "<svg" in svg(timeline_chart([], ["keys"], START, END))


def test_the_pdf_sets_the_spells_and_labels_over_the_pixels_where_the_chart_has_them() -> None:
    """What `raster` leaves out of the pixels it hands over to be set by the PDF:
    the spells as they are (no resampling) over the axes, each label at its band."""
    spell = Interval(START, END)
    devices = [Timeline(name, {"keys": {"consented": [spell]}}) for name in ("a", "b")]
    fig = timeline_chart(devices, ["keys"], START, END)
    pixels, overlay = raster(fig)
    ((spells, (x0, y0, x1, y1)),) = overlay.images
    assert spells.size == (COLUMNS, len(fig.axes[0].images[0].get_array()))
    box = fig.axes[0].get_position()  # the axes, as fractions of the figure
    assert (x0, y0, x1, y1) == pytest.approx((box.x0, box.y0, box.x1, box.y1), abs=0.01)
    assert [label.text for label in overlay.labels] == ["a", "b"]
    assert overlay.labels[0].middle > overlay.labels[1].middle  # "a" is the top band
    assert all(label.right < x0 for label in overlay.labels)
    # The pixels hold neither: inside the axes they are the page's white.
    width, height = pixels.size
    inside = np.asarray(pixels)[
        int((1 - y1) * height) + 3 : int((1 - y0) * height) - 3,
        int(x0 * width) + 3 : int(x1 * width) - 3,
    ]
    assert (inside == 255).all()
    # And the figure is as it was, for the HTML.
    assert all(a.get_visible() for a in [*fig.axes[0].images, *fig.axes[0].texts])
