"""benchmarks/table.py, small: it ingests into both layouts, erases, and says how fast.

The full run is `python benchmarks/table.py`; this notices when the benchmark breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import REPO

BENCH = REPO / "benchmarks" / "table.py"


def test_the_benchmark_reports_ingest_and_erasure() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--events", "20000", "--per-bundle", "5000"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name in ("directory", "iceberg", "iceberg_rerun"):
        assert report[name]["events"] == 20000
        assert report[name]["events_per_s"] > 0
    assert report["iceberg"]["files"]["events"]["data"] == 4  # a bundle a day, 2 devices
    assert report["erase"]["bundles"] == 2
    assert report["erase"]["files_left"]["events"]["data"] == 2
    assert report["erase"]["files_removed"]["events"] > 0
