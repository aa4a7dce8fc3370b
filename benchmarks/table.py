"""Iceberg tables benchmark: ingest into them against the Parquet directory, and an erasure.

Prints one JSON object. The bundle set is benchmarks/ingest.py's (`write_store`:
`--devices` devices with real signed ledgers, `--events` events in sessions of
`--per-bundle`), in a collector store directory. Then, on one core (Arrow's
thread pools at one thread):

- `directory`: `ingest(..., formats=("parquet",))` into a new directory dataset;
- `iceberg`: `ingest(..., table="iceberg")` into new tables (SQLite catalog),
  with the data, manifest and metadata files it leaves per table;
- `iceberg_rerun`: the same again over the finished tables (nothing to commit);
- `erase`: `org subject erase` of the first device's subject on the tables —
  the row-level deletes, the snapshot expiry and the removal of unreferenced
  files — with the files it removed (the `table.purged` records) and the
  files left.

Usage: python benchmarks/table.py [--events N] [--per-bundle N] [--devices N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from cleartrace.org.ingest import ingest
from cleartrace.org.keys import generate
from cleartrace.org.org_ledger import default_path
from cleartrace.org.subjects import erase
from ingest import write_store  # benchmarks/ingest.py: this script's directory is on the path


def _files(out: Path) -> dict[str, dict[str, int]]:
    """Per table: data files, manifests and manifest lists, metadata files."""
    counts = {}
    for table in ("events", "actions"):
        where = out / "warehouse" / "cleartrace" / table
        counts[table] = {
            "data": len(list((where / "data").rglob("*.parquet"))),
            "avro": len(list((where / "metadata").glob("*.avro"))),
            "metadata_json": len(list((where / "metadata").glob("*.metadata.json"))),
        }
    return counts


def _timed(what: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    done = what(*args, **kwargs)
    return done, {
        "seconds": round(time.perf_counter() - wall, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
    }


def _ingest(source: Path, keys: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    summary, times = _timed(ingest, str(source), keys, out, **kwargs)
    s = summary.as_dict()
    assert summary.ok, s["rejected"]
    read = s["events"]["kept"] + sum(s["events"]["dropped"].values())
    return times | {"events": read, "events_per_s": round(read / times["seconds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-bundle", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    result: dict[str, Any] = {"benchmark": "table", "cores": 1}
    with tempfile.TemporaryDirectory(prefix="ct-bench-table-") as tmp:
        root = Path(tmp)
        org = generate(root / "keys")
        store, keys = root / "store", root / "keys"
        bundles = write_store(store, org, args.events, args.per_bundle, args.devices)
        result["input"] = {"bundles": bundles, "devices": args.devices}
        result["directory"] = _ingest(store, keys, root / "dir", formats=("parquet",))
        tables = root / "tables"
        result["iceberg"] = _ingest(store, keys, tables, table="iceberg") | {
            "files": _files(tables)
        }
        result["iceberg_rerun"] = _ingest(store, keys, tables, table="iceberg")
        done, times = _timed(erase, f"{0:032x}", str(store), keys, tables)
        lines = default_path(tables).read_text().splitlines()[1:]
        purged = [r for r in map(json.loads, lines) if r["kind"] == "table.purged"]
        result["erase"] = times | {
            "bundles": done.bundles,
            "rows": done.rows,
            "files_removed": {r["table"]: r["files"] for r in purged},
            "files_left": _files(tables),
        }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
