"""benchmarks/table.py, small: it ingests into both layouts, erases, and says how fast.

The full run is `python benchmarks/table.py`; this notices when the benchmark breaks.
"""

from __future__ import annotations

from tests.support.benchmarks import run_benchmark


def test_the_benchmark_reports_ingest_and_erasure() -> None:
    report = run_benchmark("table", "--events", "20000", "--per-bundle", "5000")
    for name in ("directory", "iceberg", "iceberg_rerun"):
        assert report[name]["events"] == 20000
        assert report[name]["events_per_s"] > 0
    assert report["iceberg"]["files"]["events"]["data"] == 4  # a bundle a day, 2 devices
    assert report["erase"]["bundles"] == 2
    assert report["erase"]["files_left"]["events"]["data"] == 2
    assert report["erase"]["files_removed"]["events"] > 0
