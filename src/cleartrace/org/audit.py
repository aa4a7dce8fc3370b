"""`cleartrace org audit`: every device's ledger from the collector's store, re-verified
and exported, with the consent and compliance facts a privacy officer signs off on.

For a store (a collector's directory or s3://bucket/prefix), the organisation's
bundle keys (the ledger segments travel inside the sealed bundle bodies) and
the collector's witness key, every device's ledger is rebuilt and checked
exactly as ingest does (org/fleet.py: bundle names, signatures, segments
walked with `audit verify`'s chain walk, the signed witnessed head), plus one
check of a head lowered with the witness key's own signature (an old head
file put back): a bundle in the store reaching past it. (A `bundle.uploaded`
record saying the collector witnessed more is always in such a bundle.)
A store rolled back as a whole, bundles and heads together, looks like an
honest older store to all of that; only the collector's registry tells it
apart. With `heads_from` (`--heads-from DATA`, the collector's data
directory) the registry is the authority on heads exactly as for ingest: such
a device is "head-rollback", and one the collector witnessed whose bundles
and head file are all gone is "bundles-missing". coverage.json `heads_from`
says which evidence the heads came from ("registry" or "store").

REPORT_DIR gets:
- `ledgers/<device hex>.jsonl`: each device's rebuilt ledger as the JSON Lines
  export `cleartrace ledger export` writes, so `cleartrace audit verify FILE
  --expect-device FP --head SEQ:HASH` re-checks it anywhere, unchanged;
- `coverage.json`: per device the chain's status and the facts of its ledger
  (org/audit_facts.py), the bundles rejected and why, the witnessed heads
  relied on and the SHA-256 of every exported ledger (docs/audit.md).
Counts and times only: never captured content, and no key material.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleartrace.consent.ledger import EXPORT_TYPE, EXPORT_VERSION
from cleartrace.consent.signed_policy import SignedPolicy
from cleartrace.errors import UsageError
from cleartrace.formats import b64url, canonical, rfc3339
from cleartrace.org.audit_facts import ledger_facts
from cleartrace.org.audit_policy import report_k
from cleartrace.org.audit_proof import dataset_digests, prove
from cleartrace.org.blobstore import S3Store, open_store
from cleartrace.org.evidence import write_evidence
from cleartrace.org.fleet import DeviceLedger, Fleet, gc_paused
from cleartrace.org.heads import AcceptedHeads, HeadChecks
from cleartrace.org.ingest_summary import Rejection
from cleartrace.org.keys import load_bundle_keys, load_officer_key
from cleartrace.org.org_ledger_audit import include_org_ledgers
from cleartrace.org.receipts import signed_by
from cleartrace.org.registry_db import read_devices
from cleartrace.org.report_files import fresh_folder, write_report
from cleartrace.org.report_signing import sign_report
from cleartrace.org.witness import load_public
from cleartrace.paths import write_private_bytes

__all__ = ["COVERAGE_TYPE", "COVERAGE_VERSION", "INTACT", "AuditResult", "audit"]

log = logging.getLogger(__name__)

COVERAGE_TYPE = "cleartrace-audit-coverage"
COVERAGE_VERSION = 1
#: The chain's status of a device whose ledger holds up to its witnessed head.
INTACT = "intact"


@dataclass
class AuditResult:
    """What one audit found; `coverage` is what coverage.json holds."""

    out: Path
    coverage: dict[str, Any]
    #: Device fingerprint -> its verified records, for the devices whose chain is intact,
    #: when a dataset was proven (else each device's are let go once its facts are taken).
    ledgers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every ledger intact up to its witnessed head, and every bundle readable."""
        return bool(self.coverage["ok"])

    @property
    def problems(self) -> list[str]:
        """One line per device not intact and per bundle rejected (reason ids, no content)."""
        lines = [
            f"device {fp}: {d['chain']['status']}: {d['chain']['detail']}"
            for fp, d in self.coverage["devices"].items()
            if d["chain"]["status"] != INTACT
        ]
        lines += [
            f"bundle {r['bundle'][:16]}: {r['reason']}" for r in self.coverage["rejected_bundles"]
        ]
        return lines


def _export_lines(found: DeviceLedger) -> list[bytes]:
    """The ledger as `cleartrace ledger export` writes it: a header, then one record per line."""
    header = {
        "v": EXPORT_VERSION,
        "type": EXPORT_TYPE,
        "device_public_key": b64url(found.public_key.public_bytes_raw()),
        "device": found.fingerprint,
    }
    return [canonical(header), *found.lines]


def _lowered(found: DeviceLedger) -> str | None:
    """Why the witnessed head is older than the store's bundles show it was, or None.

    The collector stores a bundle before it moves the head, and its running
    `rewrite` repairs a head file a crash left behind, so a bundle past the
    head file means the file is stale (put back, or not yet repaired).
    """
    head = found.head
    if head is None or found.records is None:
        return None
    beyond = max(found.bundles, key=lambda b: b.head[0])
    if beyond.head[0] > head.seq:
        return (
            f"bundle {beyond.name[:16]} reaches record {beyond.head[0]}, the witnessed head "
            f"only record {head.seq}: an older head file was put back"
        )
    return None


def _device(
    found: DeviceLedger | None, fingerprint: str, bundles: int, head_file: bool = True
) -> dict[str, Any]:
    """A device's entry in coverage.json (without its ledger file's digest);
    `head_file`: the store has one for it (else only the registry knows it)."""
    head = None if found is None or found.head is None else found.head
    status, detail = INTACT, ""
    if found is None:
        status = "bundles-missing" if bundles == 0 else "bundles-unreadable"
        detail = (
            "none of this device's bundles could be read or opened"
            if bundles
            else "the store has a witnessed head but no bundle of this device"
            if head_file
            else "the collector's registry witnessed uploads of this device, the store has "
            "no bundle and no head file of it: they were removed"
        )
    elif found.refused is not None:
        status, detail = found.refused, found.detail
    elif (lowered := _lowered(found)) is not None:
        status, detail = "head-lowered", lowered
    if status == INTACT and head is not None:
        detail = f"intact up to witnessed head {head.seq}"
    records = None if found is None else found.records
    return {
        "device": fingerprint,
        "subject": None if found is None else found.subject,
        "chain": {
            "status": status,
            "detail": detail,
            "first_bad_seq": None if found is None else found.broken_seq,
            "records": None if records is None else len(records),
            "witnessed_head": None if head is None else {"seq": head.seq, "hash": head.hash},
        },
        "bundles": {
            "in_store": bundles,
            "opened": 0 if found is None else len(found.bundles),
            "sessions": 0
            if found is None
            else len({b.session for b in found.bundles if b.session}),
        },
        "facts": None if records is None else ledger_facts(records),
    }


def _write(path: Path, lines: Sequence[bytes], what: str, *, durable: bool = True) -> str:
    """Write `lines` (UTF-8), each ended by a newline, as a file (0600, all or
    nothing); its SHA-256."""
    data = b"\n".join([*lines, b""])
    write_private_bytes(path, data, what, durable=durable)
    return hashlib.sha256(data).hexdigest()


def audit(
    source: str,
    keys: Path,
    witness_key: Path,
    out: Path,
    *,
    officer_key: Path | None = None,
    dataset: Path | None = None,
    endpoint_url: str | None = None,
    k: int | None = None,
    org_ledger: Path | None = None,
    policy: SignedPolicy | None = None,
    every_signature: bool = False,
    heads_from: Path | str | None = None,
) -> AuditResult:
    """Audit every device's ledger under `source`; write REPORT_DIR `out`,
    signed last by the officer's key (officer.key in the directory
    `officer_key`, default `keys`).

    With `dataset`, every row of it is held to the verified ledgers
    (org/audit_proof.py) and every file of it is hashed into coverage.json.
    index.html and report.pdf say the same for people (org/report_files.py),
    with fleet figures only for groups of at least k devices: the policy's
    `report_min_group`, which `k` may raise but not lower; without a policy `k`, or 5
    (org/audit_policy.py; coverage.json `k` says which).
    The org ledgers (`org_ledger`, else the one next to `dataset`, and the
    collector's beside `witness_key`) are recorded in, copied and verified
    (org/org_ledger_audit.py).
    Each linked run of a ledger is proven by its last signature (consent/chain.py,
    "One signature per run"); `every_signature` checks each record's as well.
    With `heads_from` (the collector's data directory, or a fleet's PostgreSQL
    state), its registry is the authority on witnessed heads, as for `org ingest
    --heads-from`; a fleet's state is also where the collector's org ledger is read.
    With `policy` (the organisation's verified signed policy), the evidence pack
    is written to REPORT_DIR/evidence/ (org/evidence.py); without it, coverage.json
    `evidence` says it was not.

    Raises:
        UsageError: a bad source or report directory, no registry in `heads_from`, or
            `k` below the policy's least group.
        KeyStorageError: the organisation's keys or the witness key cannot be loaded.
        StoreError: the source cannot be listed.
        DiskFull: no room for the report.
    """
    k, k_source = report_k(policy, k)
    org = load_bundle_keys(keys)
    witness = load_public(witness_key)
    signer = load_officer_key(keys if officer_key is None else officer_key)
    registry = None if heads_from is None else read_devices(heads_from)
    if dataset is not None and not dataset.is_dir():
        raise UsageError(f"{dataset} is not a dataset directory; give the directory ingest wrote")
    store = open_store(source, endpoint_url=endpoint_url)
    if isinstance(store, S3Store):
        store.check()
    elif not store.root.is_dir():
        raise UsageError(f"{source} is not a directory; give the collector's store directory")
    ledgers_dir = fresh_folder(out, "ledgers")
    rejected: list[Rejection] = []

    def reject(name: str, device: str | None, reason: str, detail: str) -> None:
        rejected.append(Rejection(name, device, reason, detail))

    checks = HeadChecks(AcceptedHeads.none(), witness, registry)
    fleet = Fleet(
        store,
        org,
        checks,
        reject,
        keep_events=False,
        every_signature=every_signature,
        receipt_ok=signed_by(keys),
        report_unreadable=True,
    )
    heads = fleet.witnessed_heads()
    names = fleet.bundle_names()
    by_device = fleet.group(names)
    # Devices the registry saw upload: all of whose bundles and head file gone is named too.
    # (An erased subject's devices are gone on purpose, with a receipt: org/subjects.py.)
    witnessed = (
        set()
        if registry is None
        else {fp for fp, d in registry.items() if d.head_bundle is not None}
    )
    witnessed -= fleet.erased_devices
    # Bundles rejected before their device is known (unreadable, misnamed, badly
    # signed) are listed under rejected_bundles only.
    in_store = {device: len(items) for device, items in by_device.items()}
    result = AuditResult(out, {})
    devices: dict[str, dict[str, Any]] = {}
    digests: dict[str, str] = {}
    with gc_paused():
        for device in sorted(set(by_device) | set(heads) | witnessed):
            items = by_device.get(device, [])
            found = fleet.device(device, items, heads.get(device)) if items else None
            if found is not None and found.refused is not None:
                # Said once, of the device, rather than again of each of its bundles.
                rejected[:] = [
                    r for r in rejected if (r.device, r.reason) != (device, found.refused)
                ]
            entry = _device(found, device, in_store.get(device, 0), device in heads)
            if found is not None and found.records is not None:
                rel = f"ledgers/{device.removeprefix('sha256:')}.jsonl"
                # Not synced one by one: the signature, written (and synced) last, makes
                # a report a crash left short fail `org audit check`.
                digests[rel] = _write(
                    ledgers_dir / Path(rel).name,
                    _export_lines(found),
                    "audited ledger",
                    durable=False,
                )
                entry["ledger_file"] = {"path": rel, "sha256": digests[rel]}
                if dataset is not None and entry["chain"]["status"] == INTACT:
                    result.ledgers[device] = found.records  # for the proof; else let go
            devices[device] = entry
    opened_none = not any(d["bundles"]["opened"] for d in devices.values())
    if by_device and opened_none and all(r.reason == "wrong-org-key" for r in rejected):
        raise UsageError(
            f"the bundles in {store.describe()} are sealed to another organisation key than "
            f"{keys}; give --keys the key directory of the organisation whose collector "
            "stored them"
        )
    ok = not rejected and all(d["chain"]["status"] == INTACT for d in devices.values())
    result.coverage = {
        "v": COVERAGE_VERSION,
        "type": COVERAGE_TYPE,
        "created": rfc3339(datetime.now(UTC)),
        "store": store.describe(),
        "heads_from": "store" if registry is None else "registry",
        "ok": ok,
        "devices": devices,
        "rejected_bundles": [r.as_dict() for r in rejected],
        "witnessed_heads": {
            fp: d["chain"]["witnessed_head"]
            for fp, d in devices.items()
            if d["chain"]["witnessed_head"] is not None
        },
        "ledgers": digests,
        "k": {"value": k, "source": k_source},
    }
    if dataset is not None:
        proof = prove(dataset, result.ledgers)
        result.coverage["proof"] = {**proof.as_json(), "violations": proof.violations}
        result.coverage["dataset_files"] = dataset_digests(dataset)
        result.coverage["ok"] = ok = ok and proof.ok
    include_org_ledgers(
        out,
        result.coverage,
        store=store,
        keys=keys,
        witness=witness,
        witness_key=witness_key,
        collector_state=heads_from if isinstance(heads_from, str) else None,
        dataset=dataset,
        ledger=org_ledger,
    )
    result.coverage["evidence"] = write_evidence(out, policy, result.coverage, k)
    # Compact: the C encoder (an indented dump takes the pure-Python one, 10x slower).
    text = json.dumps(result.coverage, sort_keys=True, separators=(",", ":")).encode("utf-8")
    _write(out / "coverage.json", [text], "audit coverage")
    write_report(out, result.coverage, k)
    sign_report(out, signer)  # last: the signature covers every file written above
    log.info("audit: %d devices, %d bundles rejected, ok=%s", len(devices), len(rejected), ok)
    return result
