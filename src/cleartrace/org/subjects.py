"""Data subject requests from the organisation's side, by pseudonymous subject id.

`export`: everything the organisation holds about one subject — the headers
of its bundles in the collector's store, each of its devices' ledgers
(rebuilt from those bundles, org/fleet.py) and its rows in the dataset —
in one JSON file (0600), recorded as `subject.exported` in the officer
side's org ledger with the file's SHA-256.

`erase`: removes the subject's bundles and its devices' head files from the
store (a directory or s3://, org/blobstore.py) and its rows from the dataset
(every file of each of its bundles, org/dataset.py), and leaves an erasure
receipt signed by the organisation's key: which devices, which bundles (each
named by the SHA-256 of its bytes), which dataset files (with their SHA-256)
and how many rows went, and when. The receipt is written to the store as
erased/<subject>.json *before* anything is removed, so that an erasure cut
short still keeps ingest and the audit from using what is left (org/fleet.py
passes over every bundle of an erased subject, including ones its device
uploads again), and the next `erase` finishes it. It is recorded as
`subject.erased` with the receipt's SHA-256; the audit checks that every
receipt in the store is signed and recorded (org/org_ledger_audit.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cleartrace.errors import UsageError
from cleartrace.formats import (
    canonical,
    key_fingerprint,
    rfc3339,
    sign_canonical,
)
from cleartrace.org.blobstore import (
    BlobStore,
    S3Store,
    bundle_key,
    erased_key,
    head_key,
    open_store,
)
from cleartrace.org.dataset import Dataset
from cleartrace.org.dataset_table import TableDataset, open_dataset
from cleartrace.org.fleet import Fleet, FleetBundle
from cleartrace.org.heads import AcceptedHeads, HeadChecks
from cleartrace.org.keys import BundleKeys, OrgKeys, load_private
from cleartrace.org.org_ledger import OrgLedgerFile, default_path, load_ledger_key
from cleartrace.org.receipts import RECEIPT_TYPE
from cleartrace.paths import write_private_bytes

__all__ = ["Done", "erase", "export"]

EXPORT_TYPE = "cleartrace-subject-export"


@dataclass(frozen=True)
class Done:
    """What a request did: counts, and the file or receipt it wrote with its SHA-256."""

    subject: str
    devices: int
    bundles: int
    rows: int
    where: str
    digest: str


def _check_subject(subject: str) -> None:
    if len(subject) != 32 or any(c not in "0123456789abcdef" for c in subject):
        raise UsageError(
            "a subject is a pseudonymous id of 32 lower-case hex digits; "
            "'cleartrace org devices' lists them"
        )


def _open(source: str, keys: Path, endpoint_url: str | None) -> tuple[OrgKeys, BlobStore]:
    private = load_private(keys)
    store = open_store(source, endpoint_url=endpoint_url)
    if isinstance(store, S3Store):
        store.check()
    elif not store.root.is_dir():
        raise UsageError(f"{source} is not a directory; give the collector's store directory")
    return private, store


def _dataset(dataset: Path, org: OrgKeys, catalog: str | None) -> Dataset:
    """The dataset as its manifest says it keeps its rows: files or Iceberg tables."""
    if not dataset.is_dir():
        raise UsageError(f"{dataset} is not a dataset directory; give the directory ingest wrote")
    return open_dataset(dataset, org.bundle_public.fingerprint, None, catalog)


def _subject_bundles(
    store: BlobStore, org: OrgKeys, subject: str, data: Dataset, task: str
) -> tuple[Fleet, list[FleetBundle]]:
    """The subject's valid bundles in the store, erased or not (rejections ignored).

    Bundles the dataset holds as another subject's are not read: one of them
    that cannot be read must not block this subject's erasure or export. A
    bundle of unknown owner that cannot be read stops it (`StoreError`, naming
    `task`): it may be this subject's.
    """
    keys = BundleKeys(org.bundle_private, org.bundle_public)
    fleet = Fleet(store, keys, HeadChecks(AcceptedHeads.none()), lambda *_: None, keep_events=False)
    fleet.task = task
    others = {n for n, e in data.bundles.items() if e.subject != subject}
    found = []
    for name in fleet.bundle_names():
        if name in others:
            continue
        item = fleet.check(name)
        if item is not None and item.subject == subject:
            found.append(item)
    return fleet, found


def _ledger(dataset: Path, org_ledger: Path | None, keys: Path) -> OrgLedgerFile:
    return OrgLedgerFile(
        default_path(dataset) if org_ledger is None else org_ledger, load_ledger_key(keys)
    )


def _rows(dataset: Path, files: list[str]) -> list[dict[str, Any]]:
    """A bundle's rows from its Parquet files, or its JSON Lines ones when the
    dataset was written without Parquet (each row is in every format written)."""
    parquet = [f for f in files if f.endswith(".parquet")]
    if parquet:
        return [row for rel in parquet for row in pq.read_table(dataset / rel).to_pylist()]
    out: list[dict[str, Any]] = []
    for rel in files:
        if rel.endswith(".jsonl"):
            lines = (dataset / rel).read_text(encoding="utf-8").splitlines()
            out += [json.loads(line) for line in lines if line]
    return out


def export(
    subject: str,
    source: str,
    keys: Path,
    dataset: Path,
    out: Path,
    *,
    org_ledger: Path | None = None,
    endpoint_url: str | None = None,
    catalog: str | None = None,
) -> Done:
    """Write everything held about `subject` to the JSON file `out`; record it.

    Raises:
        UsageError: a bad subject id, store or dataset; nothing held about it.
        KeyStorageError: KEYS cannot be loaded.
        StoreError: the store cannot be read.
    """
    _check_subject(subject)
    org, store = _open(source, keys, endpoint_url)
    data = _dataset(dataset, org, catalog)
    fleet, items = _subject_bundles(store, org, subject, data, "export")
    ledgers: dict[str, Any] = {}
    for device in sorted({i.device for i in items}):
        mine = [i for i in items if i.device == device]
        found = fleet.device(device, mine, None)
        ledgers[device] = None if found is None else found.records
    rows: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    if isinstance(data, TableDataset):
        try:
            rows = data.subject_rows(subject, "events")
            actions = data.subject_rows(subject, "actions")
        finally:
            data.close()
    for entry in data.bundles.values():
        if entry.subject != subject:
            continue
        rows += _rows(dataset, [f for f in entry.files if f.startswith("events/")])
        actions += _rows(dataset, [f for f in entry.files if f.startswith("actions/")])
    if not items and not rows:
        raise UsageError(
            f"nothing is held about subject {subject} in {store.describe()} or {dataset}; "
            "check the id ('cleartrace org devices')"
        )
    doc = {
        "v": 1,
        "type": EXPORT_TYPE,
        "subject": subject,
        "created": rfc3339(datetime.now(UTC)),
        "bundles": [
            {"name": i.name, "header": dict(i.header)} for i in sorted(items, key=lambda i: i.name)
        ],
        "ledgers": ledgers,
        "rows": rows,
        "actions": actions,
    }
    raw = (json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False) + "\n").encode("utf-8")
    write_private_bytes(out, raw, "subject export")
    digest = hashlib.sha256(raw).hexdigest()
    _ledger(dataset, org_ledger, keys).append(
        "subject.exported", subject=subject, bundles=len(items), rows=len(rows), digest=digest
    )
    return Done(subject, len(ledgers), len(items), len(rows), str(out), digest)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def erase(
    subject: str,
    source: str,
    keys: Path,
    dataset: Path,
    *,
    org_ledger: Path | None = None,
    endpoint_url: str | None = None,
    catalog: str | None = None,
) -> Done:
    """Remove `subject`'s bundles, head files and dataset rows; sign, store and record the receipt.

    Raises:
        UsageError: a bad subject id, store or dataset; nothing held about it;
            an ingest writing the dataset.
        KeyStorageError: KEYS cannot be loaded.
        StoreError: the store cannot be read or changed.
    """
    _check_subject(subject)
    org, store = _open(source, keys, endpoint_url)
    data = _dataset(dataset, org, catalog)
    _, items = _subject_bundles(store, org, subject, data, "erasure")
    with data.locked():
        # What a killed ingest left unlisted may be the subject's rows too.
        data.sweep()
        entries = {n: e for n, e in data.bundles.items() if e.subject == subject}
        if not items and not entries:
            raise UsageError(
                f"nothing is held about subject {subject} in {store.describe()} or {dataset}; "
                "check the id ('cleartrace org devices')"
            )
        devices = sorted({i.device for i in items} | {e.device for e in entries.values()})
        files = {
            rel: _digest(dataset / rel)
            for e in entries.values()
            for rel in e.files
            if (dataset / rel).is_file()
        }
        bundles = sorted({i.name for i in items} | set(entries))
        rows = sum(e.rows for e in entries.values())
        unsigned: dict[str, Any] = {
            "v": 1,
            "type": RECEIPT_TYPE,
            "subject": subject,
            "devices": devices,
            "bundles": bundles,
            "dataset_files": files,
            "rows": rows,
            "time": rfc3339(datetime.now(UTC)),
            "signer": key_fingerprint(org.signing_public.public_bytes_raw()),
        }
        receipt = canonical({**unsigned, "sig": sign_canonical(org.signing_private, unsigned)})
        store.put(erased_key(subject), receipt)  # first: what is left is passed over from now on
        digest = hashlib.sha256(receipt).hexdigest()
        ledger = _ledger(dataset, org_ledger, keys)
        ledger.append(
            "subject.erased",
            subject=subject,
            bundles=len(bundles),
            rows=rows,
            digest=digest,
        )
        for item in items:
            store.delete(bundle_key(item.name))
        for device in devices:
            store.delete(head_key(device.removeprefix("sha256:")))
        for name in entries:
            data.drop(name)
        data.save()
        if isinstance(data, TableDataset):  # and what a killed run left in their partitions
            data.erasing(devices)
        data.settle(ledger)  # Iceberg tables: old snapshots and their files go too
    return Done(
        subject,
        len(devices),
        len(bundles),
        rows,
        erased_key(subject),
        digest,
    )
