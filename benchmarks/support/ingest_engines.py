"""benchmarks/ingest.py's engines: the same store ingested in-process and on Ray.

Each engine runs `--runs` times into a new dataset (Parquet only) and the
median is kept. Ray runs on a real local head node started for it
(tests/support/ray_cluster.py: `ray start --head` on 127.0.0.1 with 1, then
2 CPUs, so 1 or 2 tasks at once), its start not timed; each run's time
includes connecting to it and its workers starting (a new job each run), as
an operator's run would. Nothing is pinned: on a 2-core machine the driver
(ledgers, coverage, writing the dataset) shares the cores with the workers.
"""

from __future__ import annotations

import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cleartrace.org.ingest import ingest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.support

from tests.support.ray_cluster import ray_head

__all__ = ["engines"]


def _run(source: Path, keys: Path, out: Path, **engine: Any) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    summary = ingest(str(source), keys, out, formats=("parquet",), **engine)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    s = summary.as_dict()
    assert summary.ok, s["rejected"]
    read = s["events"]["kept"] + sum(s["events"]["dropped"].values())
    return {"seconds": wall, "cpu": cpu, "events": read, "kept": s["events"]["kept"]}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    return {
        "seconds": round(seconds, 3),
        # This process's CPU time: all of the work in-process, the driver's share on Ray.
        "driver_cpu_seconds": round(statistics.median(r["cpu"] for r in runs), 3),
        "events_per_s": round(runs[0]["events"] / seconds),
        "events": runs[0]["events"],
        "kept": runs[0]["kept"],
        "runs": len(runs),
    }


def engines(root: Path, runs: int) -> dict[str, Any]:
    """events/s of `root`/store ingested in-process, on Ray with 1 and with 2 workers."""
    source, keys = root / "store", root / "keys"
    result: dict[str, Any] = {}
    result["inprocess"] = _median(
        [_run(source, keys, root / f"engine-inprocess-{i}") for i in range(runs)]
    )
    kept: set[int] = {result["inprocess"]["kept"]}
    token = root / "ray-token"  # one for both clusters: Ray reads it once per process
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    for workers in (1, 2):
        cluster = ray_head(
            root / f"ray-{workers}", cpus=workers, object_store_bytes=None, token=token
        )
        with cluster as head, head.driver():
            timed = [
                _run(source, keys, root / f"engine-ray{workers}-{i}", engine="ray",
                     address=head.address)
                for i in range(runs)
            ]  # fmt: skip
        result[f"ray_{workers}_worker{'s' if workers > 1 else ''}"] = _median(timed)
        kept.add(timed[0]["kept"])
    assert len(kept) == 1, "the engines kept different rows"
    base = result["inprocess"]["events_per_s"]
    for figures in result.values():
        figures["vs_inprocess"] = round(figures["events_per_s"] / base, 2)
    return result
