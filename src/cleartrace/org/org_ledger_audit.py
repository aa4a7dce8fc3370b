"""The org ledgers in `org audit`: recorded, copied into the report and verified.

The audit records itself in the officer side's chain first (`audit.run`:
how many devices, and the SHA-256 of the evidence it relied on so far — the
exported ledgers, the witnessed heads, the dataset's files; the report's own
signature comes after and cannot be in it), then copies both chains into
REPORT_DIR/org-ledger/ (`officer.jsonl`, `collector.jsonl`) and walks each
with the one chain walk. Every erasure receipt in the store must be signed
by the organisation's key and recorded by a `subject.erased` record of the
officer chain carrying its digest: a receipt planted to hide a device is
caught here. A broken chain, or an unrecorded receipt, makes the audit fail.
coverage.json lists every chain's acts (record number, time, kind, ids,
counts, digests: the record without its chain fields), which the report shows
as "who accessed what, when" (org/report_org_ledger.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.errors import LedgerBroken, StoreError
from cleartrace.formats import canonical, key_fingerprint
from cleartrace.org.blobstore import BlobStore
from cleartrace.org.keys import load_private
from cleartrace.org.org_ledger import (
    COLLECTOR,
    OFFICER,
    OrgLedgerFile,
    default_path,
    export_lines,
    load_ledger_key,
    parse_lines,
    verify_chain,
)
from cleartrace.org.receipts import check_receipt
from cleartrace.org.registry_db import read_org_ledger
from cleartrace.org.report_files import fresh_folder
from cleartrace.paths import write_private_bytes

__all__ = ["include_org_ledgers"]

INTACT, BROKEN, ABSENT = "intact", "broken", "absent"


#: A record's chain fields: the rest (kind, time, ids, counts, digests) is the act.
_CHAIN_FIELDS = ("v", "prev", "sig")


def _acts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The acts the records state, for the report's "who accessed what, when"."""
    return [{k: v for k, v in r.items() if k not in _CHAIN_FIELDS} for r in records]


def _verified(data: bytes, signer: Ed25519PublicKey, rel: str) -> dict[str, Any]:
    """One chain's entry in coverage.json: where its copy is, its digest, signer and
    status, and its acts (all of them; of a broken chain, those before the first bad one)."""
    entry: dict[str, Any] = {
        "file": rel,
        "sha256": hashlib.sha256(data).hexdigest(),
        "signer": key_fingerprint(signer.public_bytes_raw()),
    }
    try:
        _, records = verify_chain(data, signer)
    except LedgerBroken as exc:
        try:
            before = parse_lines(data)[1][: max(exc.seq - 1, 0)]
        except LedgerBroken:
            before = []
        return {
            **entry,
            "status": BROKEN,
            "reason": exc.reason,
            "detail": str(exc),
            "first_bad_seq": exc.seq,
            "acts": _acts(before),
        }
    return {
        **entry,
        "status": INTACT,
        "records": len(records),
        "detail": f"intact: {len(records)} records",
        "acts": _acts(records),
    }


def _evidence_digest(coverage: dict[str, Any]) -> str:
    seen = {k: coverage.get(k) for k in ("ledgers", "witnessed_heads", "dataset_files")}
    return hashlib.sha256(canonical(seen)).hexdigest()


def include_org_ledgers(
    out: Path,
    coverage: dict[str, Any],
    *,
    store: BlobStore,
    keys: Path,
    witness: Ed25519PublicKey,
    witness_key: Path,
    dataset: Path | None,
    ledger: Path | None,
    collector_state: str | None = None,
) -> None:
    """Record this audit, copy and verify both org ledgers; sets coverage["org_ledger"]
    and, when a chain is broken, coverage["ok"] to false.

    The officer chain is `ledger`, else the one next to `dataset`; the
    collector's is read from the registry beside its witness key, or from
    `collector_state` (a fleet's PostgreSQL state, `--heads-from URL`); a fleet
    process's data directory beside the key is refused, not followed.

    Raises:
        KeyStorageError: an officer chain is in play and KEYS/ledger.key or sign.key cannot
            be loaded (receipts are checked against sign.key's public half).
        UsageError: the report directory or the officer chain cannot be written.
    """
    folder = fresh_folder(out, "org-ledger")
    chains: dict[str, dict[str, Any]] = {}
    officer_records: list[dict[str, Any]] = []
    path = ledger if ledger is not None else None if dataset is None else default_path(dataset)
    if path is not None:
        signing = load_ledger_key(keys)
        data = path.read_bytes() if path.is_file() else b""
        try:
            if data:
                verify_chain(data, signing.public_key())
            OrgLedgerFile(path, signing).append(
                "audit.run", devices=len(coverage["devices"]), digest=_evidence_digest(coverage)
            )
            data = path.read_bytes()
        except LedgerBroken:
            pass  # not appended to: copied as found, and reported broken below
        write_private_bytes(folder / f"{OFFICER}.jsonl", data, "org ledger copy")
        chains[OFFICER] = _verified(data, signing.public_key(), f"org-ledger/{OFFICER}.jsonl")
        if chains[OFFICER]["status"] == INTACT:
            officer_records = verify_chain(data, signing.public_key())[1]
        erasures = _erasures(store, load_private(keys).signing_public, officer_records)
    else:
        erasures = []
    # The collector's chain lives in its registry: the fleet's state, or the
    # data directory beside its witness key.
    data_dir = witness_key if witness_key.is_dir() else witness_key.parent
    records = read_org_ledger(data_dir if collector_state is None else collector_state)
    if records is not None:
        raw = export_lines(COLLECTOR, witness, records)
        write_private_bytes(folder / f"{COLLECTOR}.jsonl", raw, "org ledger copy")
        chains[COLLECTOR] = _verified(raw, witness, f"org-ledger/{COLLECTOR}.jsonl")
    bad = [c for c in chains.values() if c["status"] != INTACT] + [
        e for e in erasures if e["status"] != "recorded"
    ]
    status = ABSENT if not chains else BROKEN if bad else INTACT
    coverage["org_ledger"] = {"status": status, "chains": chains, "erasures": erasures}
    if bad:
        coverage["ok"] = False


def _erasures(
    store: BlobStore, signer: Ed25519PublicKey, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each erasure receipt in the store: recorded (signed, and its digest in a
    `subject.erased` record), or why not."""
    recorded = {r.get("digest") for r in records if r.get("kind") == "subject.erased"}
    out = []
    for key in store.list("erased/"):
        subject = key.removeprefix("erased/").removesuffix(".json")
        try:
            raw = store.get(key)
            check_receipt(json.loads(raw), signer)
        except (StoreError, ValueError) as exc:
            out.append({"subject": subject, "status": "receipt-invalid", "detail": str(exc)})
            continue
        digest = hashlib.sha256(raw).hexdigest()
        status = "recorded" if digest in recorded else "erasure-unrecorded"
        out.append({"subject": subject, "status": status, "digest": digest})
    return out
