"""benchmarks/actions.py, small: both inputs derive actions and the JSON says how fast.

The full run (a million events) is `make bench`; this notices when the
benchmark breaks, and holds its person-shaped input to having every kind of
action the derivation takes apart.
"""

from __future__ import annotations

import runpy

from cleartrace.org.actions import ACTION_NAMES, derive_actions
from tests.support import REPO
from tests.support.benchmarks import run_benchmark

BENCH = REPO / "benchmarks" / "actions.py"


def test_the_benchmark_reports_both_inputs() -> None:
    report = run_benchmark("actions", "--events", "20000", "--runs", "1")
    for name in ("person", "ingest"):
        assert report[name]["events"] == 20000
        assert report[name]["actions"] > 0
        assert report[name]["events_per_s"] > 0
        assert report[name]["events_per_cpu_s"] > 0


def test_the_person_input_has_every_kind_of_action_but_middle_clicks() -> None:
    person = runpy.run_path(str(BENCH), run_name="actions_bench")["person"]
    actions = derive_actions(person(20000)).column("action").to_pylist()
    assert set(actions) == set(ACTION_NAMES) - {"middle_click"}
