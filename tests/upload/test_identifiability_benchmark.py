"""benchmarks/identifiability.py, small: its synthetic typists, its attacker, its JSON.

The full run (20 typists and more) is `make bench`; this runs it with a few
typists and samples so the suite notices when the benchmark breaks or stops
saying what its readers (the closing note, the lead) read from it.
"""

from __future__ import annotations

import runpy
from typing import Any

import pyarrow as pa
import pytest

from cleartrace.events import Event, Kind
from cleartrace.review.text import reconstruct
from tests.support import REPO
from tests.support.benchmarks import run_benchmark

BENCH = REPO / "benchmarks" / "identifiability.py"
VARIANTS = ("raw", "retimed", "spread", "ordered")
SHIFT = 0xFFE1


def _bench() -> dict[str, Any]:
    """The benchmark's functions, run as a module of its own (not as `__main__`)."""
    return runpy.run_path(str(BENCH), run_name="identifiability")


def _events(table: pa.Table) -> list[Event]:
    cols = table.to_pydict()
    return [
        Event(t, Kind(k), a, b, c, d, app, title)
        for t, k, a, b, c, d, app, title in zip(
            cols["t_ns"], cols["kind"], cols["a"], cols["b"], cols["c"], cols["d"],
            cols["app"], cols["title"], strict=True,
        )
    ]  # fmt: skip


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_benchmark("identifiability", "--seed", "3", "--typists", "4", "--samples", "4")


def test_the_report_names_its_setup_and_chance(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "identifiability"
    assert (report["seed"], report["typists"], report["samples_per_typist"]) == (3, 4, 4)
    assert report["keystrokes_per_sample"] == 200
    assert report["chance"] == 0.25
    assert report["twice_chance"] == 0.5


def test_every_variant_has_each_attackers_top1_accuracy(report: dict[str, Any]) -> None:
    for variant in VARIANTS:
        scores = report["accuracy"][variant]
        assert set(scores) == {"knn", "logistic", "best"}, variant
        assert all(0.0 <= scores[name] <= 1.0 for name in scores), variant
        assert scores["best"] == max(scores["knn"], scores["logistic"]), variant


def test_each_group_of_features_is_scored_alone(report: dict[str, Any]) -> None:
    # What each variant leaks: holds, flights, overall statistics, the starts of typing runs.
    for variant in VARIANTS:
        scores = report["by_features"][variant]
        assert set(scores) == {"holds", "flights", "overall", "run_starts"}, variant
        assert all(0.0 <= score <= 1.0 for score in scores.values()), variant


def test_the_typists_are_told_apart_on_raw_events(report: dict[str, Any]) -> None:
    # Four typists are easy: an attacker that misses here is broken, not challenged.
    assert report["accuracy"]["raw"]["best"] >= 0.8
    assert report["raw_identifies"] is True


def test_the_samples_look_like_typing(report: dict[str, Any]) -> None:
    typing = report["typing"]
    # Several typing runs per sample (pauses of TYPING_PAUSE_NS and more between them).
    assert typing["runs_per_sample"] >= 2
    # People typing, not a machine: a flight of tens to hundreds of ms, holds of about 100 ms.
    assert 100 <= typing["mean_flight_ms"] <= 600
    assert 60 <= typing["mean_hold_ms"] <= 200
    assert typing["shifted_per_sample"] >= 1


def _shifted_as_typed(events: list[Event]) -> bool:
    """Whether Shift is held at every capital's press and at no other letter's."""
    held = False
    for event in events:
        if event.a == SHIFT:
            held = event.kind is Kind.KEY_DOWN
        elif (
            event.kind is Kind.KEY_DOWN
            and chr(event.a).isalpha()
            and chr(event.a).isupper() != held
        ):
            return False
    return True


def test_every_variant_still_types_the_text() -> None:
    # Shift brackets each capital, and moving or re-pacing key events changes no letter.
    bench = _bench()
    corpus = bench["texts"](5, 2)
    assert any(ch.isupper() for ch in "".join(corpus))
    for typist, text, table in bench["simulate"](5, 2, 2):
        for name, variant in bench["VARIANTS"].items():
            events = _events(variant(table))
            assert [s.text for s in reconstruct(events)] == [corpus[text]], (name, typist)
            assert _shifted_as_typed(events), (name, typist, text)
