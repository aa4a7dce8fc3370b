"""benchmarks/identifiability.py, small: its synthetic typists, its attacker, its JSON.

The full run (20 typists and more) is `make bench`; this runs it with a few
typists and samples so the suite notices when the benchmark breaks or stops
saying what its readers (the closing note, the lead) read from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.support import REPO

BENCH = REPO / "benchmarks" / "identifiability.py"
VARIANTS = ("raw", "spread")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--seed", "3", "--typists", "4", "--samples", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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
