"""Moving a collector's state to PostgreSQL: how long `org move-state` takes.

Prints one JSON object. A DATA/collector.db is made with --devices enrolled
devices (each through the registry's own enrolment, so the org ledger holds
one signed record for each), --bundles-per-device accepted bundles each
(their index rows written in one transaction, as many accepts would leave
them, the witness counter set to match) and --spare unused tokens. Then, on
a throwaway PostgreSQL 15 cluster (durable: fsync on commit), timed each:

- "move": `move_state` into an empty database, from the lock to the removed
  file (reading, the ledger walk, the one transaction, the kept copy);
- "rerun": the same move run again after its commit (the file put back, as
  a kill after the commit leaves it): the check that the database already
  holds it all, then the finish.

Reported: the rows moved, seconds and rows per second of each, and that the
database holds every device, bundle, token and record afterwards.

Usage: python benchmarks/state_move.py [--devices N] [--bundles-per-device N]
[--spare N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cleartrace.org.registry import Registry
from cleartrace.org.registry_db import DB_NAME, read_devices, read_org_ledger
from cleartrace.org.state_move import KEPT_NAME, move_state

# The repository's root, for the throwaway PostgreSQL cluster of the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.postgres import postgres_cluster


def build(data: Path, devices: int, per_device: int, spare: int) -> None:
    """DATA/collector.db as described in the module's docstring."""
    registry = Registry.open(data)
    try:
        tokens = registry.issue_tokens(devices) if devices else []
        enrolled = [registry.enroll(t, os.urandom(32)).device for t in tokens]
        if spare:
            registry.issue_tokens(spare)
    finally:
        registry.close()
    conn = sqlite3.connect(data / DB_NAME, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        counter = 0
        for device in enrolled:
            for _ in range(per_device):
                counter += 1
                conn.execute(
                    "INSERT INTO bundles(name, device, size, received) VALUES (?, ?, ?, ?)",
                    (secrets.token_hex(32), device, 49_000, "2026-12-06T09:00:00.000Z"),
                )
            conn.execute(
                "UPDATE devices SET head_seq = ?, head_hash = ?, head_counter = ? WHERE device = ?",
                (per_device * 2, secrets.token_hex(32), counter, device),
            )
        conn.execute("UPDATE witness SET counter = ?", (counter,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--bundles-per-device", type=int, default=20)
    parser.add_argument("--spare", type=int, default=1_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ct-move-"))
    try:
        data = root / "data"
        build(data, args.devices, args.bundles_per_device, args.spare)
        devices, ledger = read_devices(data), read_org_ledger(data)
        saved = root / "saved.db"
        shutil.copy2(data / DB_NAME, saved)
        out: dict[str, Any] = {
            "devices": args.devices,
            "bundles_per_device": args.bundles_per_device,
        }
        with postgres_cluster(durable=True) as cluster:
            url = cluster.new_database()
            started = time.perf_counter()
            moved = move_state(data, url)
            out["move_s"] = round(time.perf_counter() - started, 3)
            rows = moved.tokens + moved.devices + moved.bundles + moved.org_ledger
            out["rows"] = rows
            out["move_rows_per_s"] = round(rows / out["move_s"])
            # As a kill after the commit leaves it: the file back, unmarked.
            (data / KEPT_NAME).unlink()
            (data / "state.json").unlink()
            shutil.copy2(saved, data / DB_NAME)
            started = time.perf_counter()
            again = move_state(data, url)
            out["rerun_s"] = round(time.perf_counter() - started, 3)
            out["rerun_copied"] = again.copied
            out["moved"] = moved.as_dict() | {"kept": None, "state": None}
            out["complete"] = read_devices(url) == devices and read_org_ledger(url) == ledger
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
