"""The consent timeline picture (org/report_charts.py `timeline_chart`): what its
image paints, read back from the figure's pixels before any rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from cleartrace.org.report_charts import Interval, Timeline, svg, timeline_chart

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=10)


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
    assert painted_columns([device]) == [600]


def test_a_spell_across_the_span_is_clipped_to_it() -> None:
    spell = Interval(START - timedelta(days=1), END + timedelta(days=1))
    device = Timeline("a", {"keys": {"consented": [spell]}})
    assert painted_columns([device]) == list(range(1200))


def test_no_devices_draw_an_empty_chart() -> None:
    assert "<svg" in svg(timeline_chart([], ["keys"], START, END))
