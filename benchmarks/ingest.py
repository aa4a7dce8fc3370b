"""Ingest benchmark: stored bundles → verified, decrypted, covered → Parquet, on one core.

Prints one JSON object. A deterministic synthetic bundle set — `--devices`
devices, each with a real signed ledger (consent given, a pause and resume,
a later withdrawal of scrolls and a redaction, so every mask has work to
do) and `--events` events in total spread over sessions of `--per-bundle`
events (≈60 % moves, 30 % keys, 7 % clicks, 3 % scrolls, a focus change with
a title every 500 events), sealed with the default hybrid suite — is written
to a collector store directory. Then, median of `--runs`, pinned to one CPU
(sched_setaffinity) with Arrow's thread pools at one thread:

- `parquet`: `ingest(..., formats=("parquet",))` into a new dataset, both
  tables (events and actions); `events_per_s` counts the events read from
  the bundles (kept or dropped), `actions` the actions written, and
  `actions_seconds` / `actions_share` the CPU time spent deriving the
  actions rows (org/action_rows.py, timed around its one call per bundle)
  and its share of the run's CPU time;
- `rerun`: the same again over the finished dataset (nothing to write);
- `jsonl`: JSON Lines only, into a new dataset.

Before that, unpinned, `engines` (benchmarks/support/ingest_engines.py): the
same store into Parquet in-process, then on a local Ray cluster (`--engine
ray`) with 1 worker and with 2 workers, median of `--runs` each:
`events_per_s` and its ratio to in-process. `--engines-only` stops there.

Usage: python benchmarks/ingest.py [--events N] [--per-bundle N] [--devices N] [--runs N]
       [--engines-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.events import Kind
from cleartrace.org import bundle_rows
from cleartrace.org.blobstore import DirStore, bundle_key
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.events_arrow import EVENT_SCHEMA
from cleartrace.upload.retiming import retime

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/support

from support.ingest_engines import engines

POLICY = {"id": "bench", "version": 1, "sha256": "2" * 64}
ALL = ["app_focus", "clicks", "keys", "mouse_move", "scroll", "window_titles"]
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
MS = 1_000_000


def _ns(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _kind_table() -> pa.Array:
    """A random byte -> kind, in the proportions of a person's input."""
    out = []
    for byte in range(256):
        share = byte / 256
        if share < 0.60:
            out.append(Kind.MOVE)
        elif share < 0.75:
            out.append(Kind.KEY_DOWN)
        elif share < 0.90:
            out.append(Kind.KEY_UP)
        elif share < 0.935:
            out.append(Kind.BUTTON_DOWN)
        elif share < 0.97:
            out.append(Kind.BUTTON_UP)
        else:
            out.append(Kind.SCROLL)
    return pa.array([int(k) for k in out], pa.uint8())


def _random(n: int, seed: bytes, type_: pa.DataType, width: int) -> pa.Array:
    """`n` deterministic pseudo-random values (SHAKE-256 of the seed)."""
    data = hashlib.shake_256(seed).digest(n * width)
    return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(data)])


def synthetic_ipc(n: int, start_ns: int, seed: int) -> bytes:
    """One session's events as the bundle body's zstd Arrow IPC stream, re-timed."""
    s = seed.to_bytes(8, "big")
    deltas = pc.add(pc.bit_wise_and(_random(n, s + b"t", pa.uint8(), 1), 31), 5)
    t = pc.add(pc.cumulative_sum(pc.multiply(deltas.cast(pa.int64()), MS)), start_ns)
    kinds = pc.take(_kind_table(), _random(n, s + b"k", pa.uint8(), 1))
    focus = pc.equal(pc.bit_wise_and(pa.array(range(n), pa.int64()), 511), 0)
    kinds = pc.if_else(focus, pa.scalar(int(Kind.FOCUS), pa.uint8()), kinds)
    keysym = pc.add(pc.bit_wise_and(_random(n, s + b"a", pa.int32(), 4), 0x3F), 0x40)
    x = pc.bit_wise_and(_random(n, s + b"x", pa.int32(), 4), 0x3FF)
    y = pc.bit_wise_and(_random(n, s + b"y", pa.int32(), 4), 0x3FF)
    is_key = pc.less_equal(kinds, int(Kind.KEY_UP))
    zero = pa.scalar(0, pa.int32())
    table = pa.Table.from_arrays(
        [
            t,
            kinds,
            pc.if_else(is_key, keysym, x),
            pc.if_else(is_key, zero, y),
            pc.if_else(pc.is_in(kinds, pa.array([4, 5], pa.uint8())), 1, zero).cast(pa.int32()),
            pc.if_else(pc.equal(kinds, int(Kind.SCROLL)), -1, zero).cast(pa.int32()),
            pc.if_else(focus, pa.scalar("gedit"), pa.scalar(None, pa.string())),
            pc.if_else(focus, pa.scalar("notes - gedit"), pa.scalar(None, pa.string())),
        ],
        schema=EVENT_SCHEMA,
    )
    # Re-timed, as a device sends a session without typing_rhythm consent ("even").
    table = retime(table)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, EVENT_SCHEMA, options=options) as writer:
        writer.write_table(table, max_chunksize=1 << 20)
    return bytes(sink.getvalue().to_pybytes())


def _records(
    key: Ed25519PrivateKey, acts: list[tuple[str, datetime, dict[str, Any]]]
) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq, (kind, when, fields) in enumerate(acts, 1):
        record = sign_record(
            make_record(seq=seq, prev=prev, kind=kind, fields=fields, now=when), key
        )
        prev = record_hash(record)
        out.append(record)
    return out


def write_store(root: Path, org: OrgKeys, events: int, per_bundle: int, devices: int) -> int:
    """The bundle set; returns the number of bundles."""
    store = DirStore(root)
    bundles = 0
    sessions = max(1, events // per_bundle // devices)
    for d in range(devices):
        key = Ed25519PrivateKey.generate()
        end = START + timedelta(days=sessions)
        session_ids = [
            hashlib.sha256(f"{d}/{i}".encode()).hexdigest()[:32] for i in range(sessions)
        ]
        acts: list[tuple[str, datetime, dict[str, Any]]] = [
            ("consent.given", START, {"categories": ALL, "policy": POLICY}),
            ("recording.paused", START + timedelta(hours=2), {"until": None}),
            ("recording.resumed", START + timedelta(hours=2, minutes=5), {"reason": "person"}),
            (
                "session.redacted",
                end,
                {
                    "session": session_ids[0],
                    "method": "time",
                    "events": 1,
                    "categories": ["keys"],
                    "interval": {"start": "2026-12-01T08:10:00Z", "end": "2026-12-01T08:20:00Z"},
                },
            ),
            (
                "consent.withdrawn",
                end + timedelta(minutes=1),
                {"categories": ["scroll"], "policy": POLICY},
            ),
        ]
        records = _records(key, acts)
        base = (0, GENESIS)
        for i, session in enumerate(session_ids):
            # The ledger travels with the first session; the rest carry none.
            segment = records[:3] if i == 0 else []
            if i == len(session_ids) - 1:
                segment = records[3:] if i else records
            head = (base[0] + len(segment), record_hash(segment[-1]) if segment else base[1])
            start_ns = _ns(START + timedelta(days=i))
            raw = build_bundle(
                header_fields={
                    "subject": f"{d:032x}",
                    "session": session,
                    "interval": None,
                    "created": "2026-12-31T00:00:00.000Z",
                    "ledger": {
                        "base": {"seq": base[0], "hash": base[1]},
                        "head": {"seq": head[0], "hash": head[1]},
                    },
                    "policy": POLICY,
                    "counts": {},
                    "events": per_bundle,
                    "redactions": [],
                    "timing": "even",
                },
                ledger=segment,
                events_ipc=synthetic_ipc(per_bundle, start_ns, d * 1000 + i),
                org_key=org.bundle_public,
                device_key=key,
            )
            store.put(bundle_key(hashlib.sha256(raw).hexdigest()), raw)
            base = head
            bundles += 1
    return bundles


class _ActionsClock:
    """CPU seconds spent in the actions rows' derivation, around its call in bundle_rows."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._derive = bundle_rows.actions_table

    def __call__(self, *args: Any, **kwargs: Any) -> pa.Table:
        start = time.process_time()
        try:
            return self._derive(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - start


_ACTIONS = _ActionsClock()
bundle_rows.actions_table = _ACTIONS  # type: ignore[assignment]


def _timed(source: Path, keys: Path, out: Path, formats: tuple[str, ...]) -> dict[str, Any]:
    _ACTIONS.seconds = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    summary = ingest(str(source), keys, out, formats=formats)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    s = summary.as_dict()
    read = s["events"]["kept"] + sum(s["events"]["dropped"].values())
    assert summary.ok, s["rejected"]
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "events": read,
        "events_per_s": round(read / wall),
        "kept": s["events"]["kept"],
        "actions": s["actions"]["kept"],
        "actions_seconds": round(_ACTIONS.seconds, 3),
        "actions_share": round(_ACTIONS.seconds / cpu, 3) if cpu else 0.0,
        "dropped": s["events"]["dropped"],
        "files_written": s["files"]["written"],
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("seconds", "cpu_seconds", "events_per_s", "actions_seconds", "actions_share")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    return runs[0] | out | {"runs": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--per-bundle", type=int, default=500_000)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines-only", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "ingest", "cores": 1}
    with tempfile.TemporaryDirectory(prefix="ct-bench-ingest-") as tmp:
        root = Path(tmp)
        org = generate(root / "keys")
        t = time.perf_counter()
        bundles = write_store(root / "store", org, args.events, args.per_bundle, args.devices)
        size = sum(p.stat().st_size for p in (root / "store").rglob("*.ctb"))
        result["input"] = {
            "bundles": bundles,
            "devices": args.devices,
            "events": bundles * args.per_bundle,
            "bundle_mb": round(size / 1e6, 1),
            "suite": org.bundle_public.suite,
            "setup_seconds": round(time.perf_counter() - t, 1),
        }
        result["engines"] = engines(root, args.runs) | {"cores": len(os.sched_getaffinity(0))}
        if args.engines_only:
            json.dump(result, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
        parquet, rerun, jsonl = [], [], []
        for run in range(args.runs):
            out = root / f"parquet-{run}"
            parquet.append(_timed(root / "store", root / "keys", out, ("parquet",)))
            rerun.append(_timed(root / "store", root / "keys", out, ("parquet",)))
            jsonl.append(_timed(root / "store", root / "keys", root / f"jsonl-{run}", ("jsonl",)))
        sizes = {
            table: round(
                sum(p.stat().st_size for p in (root / "parquet-0" / table).rglob("*.parquet"))
                / 1e6,
                1,
            )
            for table in ("events", "actions")
        }
        result["parquet"] = _median(parquet) | {"dataset_mb": sizes}
        result["rerun"] = _median(rerun)
        result["jsonl"] = _median(jsonl)
        result["target_events_per_s"] = 1_000_000
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
