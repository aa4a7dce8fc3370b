"""Audit benchmark: `org audit` over a fleet's ledgers, and the coverage proof of a dataset.

Prints one JSON object. Two synthetic collector stores are written as the
collector writes them (bundles named by their SHA-256, sealed with the
default hybrid suite and signed by real device keys; heads/<device>.json
signed by a real witness key):

- `ledgers`: `--devices` devices x `--records` ledger records each (consent
  given, then sessions started, ended, approved, uploaded, with personal data
  left out and now and then a pause), in `--bundles` ledger-only bundles per
  device. Timed: `audit(...)` with the signed policy (every chain walked and
  checked against its witnessed head, every ledger exported, coverage.json,
  the evidence pack, the signature).
- `coverage`: `--rows` events over `--row-devices` devices, ingested once into
  a Parquet dataset (not timed), then timed: `prove(dataset, ledgers)`, every
  row held to its device's verified ledger.

Also `ed25519_verify_us`: the CPU cost of one Ed25519 verification alone on
this machine, and `ledgers.every_signature` (`--full-runs`, default 1): the same
audit with `--every-signature`, each record's own signature checked as well as
the last of each run (docs/adr/0006-one-signature-per-run.md), for the ratio.

Medians of `--runs`, pinned to one CPU (sched_setaffinity), Arrow at one thread.

Usage: python benchmarks/audit.py [--devices N] [--records N] [--rows N] [--runs N]
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
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS, make_record
from cleartrace.formats import b64url
from cleartrace.org.audit import audit
from cleartrace.org.audit_proof import prove
from cleartrace.org.blobstore import DirStore, bundle_key, head_key
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.org.witness import HEAD_VERSION, load_or_create, sign_head
from cleartrace.upload.bundle import build_bundle

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import synthetic_ipc  # the ingest benchmark's events

ALL = ["app_focus", "clicks", "keys", "mouse_move", "scroll", "window_titles"]
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _canonical(obj: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the benchmark's records: ASCII strings and small integers only,
    for which sorted compact JSON is the canonical form (the audit checks every one)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Device:
    """A device key and its ledger, signed record by record as `Ledger.append` does."""

    def __init__(self, index: int, policy: dict[str, Any]) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.index = index
        self.policy = policy
        self.records: list[dict[str, Any]] = []
        self.hashes: list[str] = []
        self.subject = f"{index:032x}"

    def act(self, kind: str, when: datetime, **fields: Any) -> None:
        prev = self.hashes[-1] if self.hashes else GENESIS
        record = make_record(
            seq=len(self.records) + 1, prev=prev, kind=kind, fields=fields, now=when
        )
        record["sig"] = b64url(self.key.sign(_canonical(record)))
        self.records.append(record)
        self.hashes.append(hashlib.sha256(_canonical(record)).hexdigest())

    def history(self, n: int) -> None:
        """`n` records: consent, then sessions (started, ended, data left out, approved,
        uploaded), a pause every tenth session."""
        self.act("consent.given", START, categories=ALL, policy=self.policy)
        when, i = START, 0
        while len(self.records) < n:
            i += 1
            when += timedelta(minutes=30)
            session = hashlib.sha256(f"{self.index}/{i}".encode()).hexdigest()[:32]
            steps: list[tuple[str, dict[str, Any]]] = [
                ("session.started", {"session": session}),
                ("session.ended", {"session": session}),
                ("upload.redacted", {"session": session, "spans": {"email": 1}}),
                ("session.approved", {"session": session, "by": "person"}),
                (
                    "bundle.uploaded",
                    {"bundle": "ab" * 32, "witnessed": {"seq": 1, "hash": GENESIS}},
                ),
            ]
            if i % 10 == 0:
                steps += [
                    ("recording.paused", {"until": None}),
                    ("recording.resumed", {"reason": "person"}),
                ]
            for k, (kind, fields) in enumerate(steps):
                if len(self.records) < n:
                    self.act(kind, when + timedelta(seconds=k), **fields)


def _store_device(
    store: DirStore,
    witness: Ed25519PrivateKey,
    org: OrgKeys,
    device: Device,
    bundles: int,
    events: list[bytes] | None = None,
    per_bundle: int = 0,
) -> None:
    """The device's ledger in `bundles` bundles (with `events` when given), and its head."""
    n = len(device.records)
    cuts = [n * b // bundles for b in range(bundles + 1)]
    name = ""
    for b in range(bundles):
        lo, hi = cuts[b], cuts[b + 1]
        base = (lo, device.hashes[lo - 1] if lo else GENESIS)
        head = (hi, device.hashes[hi - 1] if hi else GENESIS)
        session = None if events is None else f"{device.index:016x}{b:016x}"
        raw = build_bundle(
            header_fields={
                "subject": device.subject,
                "session": session,
                "interval": None,
                "created": "2026-12-31T00:00:00.000Z",
                "ledger": {
                    "base": {"seq": base[0], "hash": base[1]},
                    "head": {"seq": head[0], "hash": head[1]},
                },
                "policy": device.policy,
                "counts": {},
                "events": 0 if events is None else per_bundle,
                "redactions": [],
                "timing": "even",
            },
            ledger=device.records[lo:hi],
            events_ipc=b"" if events is None else events[b],
            org_key=org.bundle_public,
            device_key=device.key,
        )
        name = hashlib.sha256(raw).hexdigest()
        store.put(bundle_key(name), raw)
    doc = {
        "v": HEAD_VERSION,
        "device": _fingerprint(device),
        "seq": n,
        "hash": device.hashes[-1],
        "bundle": name,
        "time": "2026-12-31T00:00:00.000Z",
        "counter": 1,
    }
    store.put(head_key(_fingerprint(device).removeprefix("sha256:")), sign_head(doc, witness))


def _fingerprint(device: Device) -> str:
    raw = device.key.public_key().public_bytes_raw()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _median(runs: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(runs), 2), "runs_s": [round(r, 2) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--bundles", type=int, default=10, help="bundles per device")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--row-devices", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full-runs", type=int, default=1, help="runs with --every-signature")
    parser.add_argument("--skip", choices=("ledgers", "coverage"), default=None)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    key = Ed25519PrivateKey.generate()
    message, signature = b"x" * 300, key.sign(b"x" * 300)
    public = key.public_key()
    verify_us = (
        timeit.timeit(
            lambda: public.verify(signature, message), number=5000, timer=time.process_time
        )
        / 5000
        * 1e6
    )
    result: dict[str, Any] = {
        "benchmark": "audit",
        "cores": 1,
        "ed25519_verify_us": round(verify_us, 1),
        "target_s": 30,
    }
    with tempfile.TemporaryDirectory(prefix="ct-bench-audit-") as tmp:
        root = Path(tmp)
        org = generate(root / "keys")
        (root / "collector").mkdir()
        witness = load_or_create(root / "collector")
        signed = sign_policy(
            new_policy(org.bundle_public, "https://collector.example"), org.signing_private
        )
        policy_ref = signed.policy.reference()
        if args.skip != "ledgers":
            t = time.perf_counter()
            store = DirStore(root / "ledgers")
            for d in range(args.devices):
                device = Device(d, policy_ref)
                device.history(args.records)
                _store_device(store, witness, org, device, args.bundles)
            setup = time.perf_counter() - t
            times, cpu = [], []
            for run in range(args.runs):
                t, c = time.perf_counter(), time.process_time()
                done = audit(
                    str(root / "ledgers"),
                    root / "keys",
                    root / "collector",
                    root / f"report-{run}",
                    policy=signed,
                )
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                assert done.ok, done.problems[:5]
            full = []
            for run in range(args.full_runs):
                c = time.process_time()
                every = audit(
                    str(root / "ledgers"),
                    root / "keys",
                    root / "collector",
                    root / f"report-full-{run}",
                    policy=signed,
                    every_signature=True,
                )
                full.append(time.process_time() - c)
                assert every.ok, every.problems[:5]
            records = args.devices * args.records
            result["ledgers"] = {
                "devices": args.devices,
                "records": records,
                "bundles": args.devices * args.bundles,
                "setup_s": round(setup, 1),
                **_median(times),
                "cpu_median_s": round(statistics.median(cpu), 2),
                "us_per_record": round(statistics.median(times) / records * 1e6, 1),
                "cpu_us_per_record": round(statistics.median(cpu) / records * 1e6, 1),
            }
            if full:
                result["ledgers"]["every_signature"] = {
                    "cpu_median_s": round(statistics.median(full), 2),
                    "cpu_runs_s": [round(r, 2) for r in full],
                    "ratio_to_last_signature": round(
                        statistics.median(full) / statistics.median(cpu), 1
                    ),
                }
        if args.skip != "coverage":
            t = time.perf_counter()
            store = DirStore(root / "rows")
            # Bundles of 500,000 events, or fewer when --rows asks for fewer in all.
            per_bundle = min(500_000, max(1, args.rows // args.row_devices))
            per_device = max(1, args.rows // args.row_devices // per_bundle)
            for d in range(args.row_devices):
                device = Device(10**6 + d, policy_ref)
                device.act("consent.given", START, categories=ALL, policy=policy_ref)
                device.act("session.started", START, session="0" * 32)  # a ledger per bundle
                events = [
                    synthetic_ipc(
                        per_bundle, int(START.timestamp() * 1e9) + b * 10**14, d * 100 + b
                    )
                    for b in range(per_device)
                ]
                _store_device(store, witness, org, device, per_device, events, per_bundle)
            dataset = root / "dataset"
            summary = ingest(str(root / "rows"), root / "keys", dataset, formats=("parquet",))
            assert summary.ok, {k: v for k, v in summary.as_dict().items() if k != "devices"}
            found = audit(  # once, for the verified ledgers the timed proofs hold rows to
                str(root / "rows"),
                root / "keys",
                root / "collector",
                root / "rows-report",
                dataset=dataset,
            )
            setup = time.perf_counter() - t
            times, cpu, rows = [], [], 0
            for _ in range(args.runs):
                t, c = time.perf_counter(), time.process_time()
                proof = prove(dataset, found.ledgers)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                totals = proof.as_json()["totals"]
                rows = int(totals["rows"])
                assert proof.ok, totals
                assert totals["rows_in_consent"] == rows, totals
            result["coverage"] = {
                "devices": args.row_devices,
                "rows": rows,
                "setup_s": round(setup, 1),
                **_median(times),
                "cpu_median_s": round(statistics.median(cpu), 2),
                "rows_per_s": round(rows / statistics.median(times)),
            }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
