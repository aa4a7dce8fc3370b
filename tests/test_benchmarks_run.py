"""Every cheap benchmark still runs: at its smallest size, in a process of its own.

`make bench` is run rarely, so a benchmark can break for months (a protocol
it speaks changes, a consent it gives is no longer asked) without anyone
noticing. Each benchmark below runs in a second or two at these arguments;
the test asks only that it exits 0 (a benchmark fails loudly when anything
was lost or refused) and that its JSON has the figures its docstring names.
Nothing is timed. The heavy ones are listed in HEAVY with why they are left
to `make bench`; every benchmark is in one list or the other.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.benchmarks import BENCHMARKS, run_benchmark

#: Benchmark: (its smallest arguments, the figures its docstring names, as dotted paths).
SMOKE: dict[str, tuple[list[str], list[str]]] = {
    "actions": (
        ["--events", "100", "--runs", "1"],
        ["person.events_per_s", "person.events_per_cpu_s", "ingest.events_per_s"],
    ),
    "audit": (
        [
            *["--devices", "1", "--records", "2", "--bundles", "1"],
            *["--rows", "100", "--row-devices", "1", "--runs", "1"],
        ],
        [
            "ed25519_verify_us",
            "ledgers.median_s",
            "ledgers.every_signature.ratio_to_last_signature",
            "coverage.rows_per_s",
        ],
    ),
    "collector_flood": (
        [
            *["--clients", "3", "--body-mb", "0.1", "--declared-mb", "0.2", "--tricklers", "1"],
            *["--body-timeout", "0.5", "--header-timeout", "0.5"],
        ],
        [
            "rss_before_mb",
            "rss_peak_mb",
            "bound_mb",
            "answers",
            "trickler_held_max_s",
            "upload_after",
        ],
    ),
    "pii": (["--per-category", "1"], ["recall.email", "plain_untouched", "detect_s"]),
    "store_write": (
        ["--events", "100", "--chunks", "10", "--human-chunks", "10", "--repeat", "1"],
        [
            "bytes.bytes_per_event",
            "human_rate.cpu_us_per_chunk",
            "compaction.end_session_s",
            "compaction.decode_events_s",
        ],
    ),
    "upload": (
        [
            *["--clients", "1", "--bundles-per-client", "1", "--repeat", "1"],
            *["--session-minutes", "0.1", "--build-minutes", "0.1"],
        ],
        [
            "bundle_build.encode_s",
            "bundle_build.build_mb_per_s",
            "collector.0.bundles_per_s",
            "collector.0.mb_per_s",
            "collector.0.collector_cpu_percent",
        ],
    ),
}

#: Benchmark: why it is left to `make bench` (each takes well over 2 s even at its smallest).
HEAVY: dict[str, str] = {
    "fleet": "PostgreSQL, nginx, an S3 server and several collectors",
    "gui_stall": "an Xvfb, the whole tray app and a recorder on real hooks",
    "identifiability": "trains classifiers on synthetic typists",
    "ingest": "the in-process engine against a Ray cluster it starts",
    "pipeline": "a recorder's whole run, and `cleartrace record` idling on Xvfb",
    "table": "run at a small size by tests/org/test_table_benchmark.py",
    "review": "builds an encrypted session store, then a fresh process per open",
    "state_move": "a PostgreSQL cluster it starts",
}


def _at(figures: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        figures = figures[int(part)] if isinstance(figures, list) else figures[part]
    return figures


def test_every_benchmark_is_either_run_here_or_said_to_be_heavy() -> None:
    found = {p.stem for p in BENCHMARKS.glob("*.py")}
    assert found == SMOKE.keys() | HEAVY.keys(), "list each new benchmark in SMOKE or HEAVY"
    assert not SMOKE.keys() & HEAVY.keys()


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_a_benchmark_runs_at_its_smallest_size(name: str) -> None:
    args, figures = SMOKE[name]
    result = run_benchmark(name, *args, timeout=300)
    missing = []
    for figure in figures:
        try:
            _at(result, figure)
        except (KeyError, IndexError, TypeError):
            missing.append(figure)
    assert not missing, f"benchmarks/{name}.py printed no {missing}: {json.dumps(result)[:2000]}"
