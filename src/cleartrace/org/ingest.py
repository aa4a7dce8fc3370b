"""`cleartrace org ingest`: stored bundles in, a dataset that honours every withdrawal out.

For a source (a collector's directory or s3://bucket/prefix, read through
`org.blobstore`) and the organisation's private keys:

1. read the witnessed heads, then list and read every bundle: its name must
   be the SHA-256 of its bytes, its header well formed, its device signature
   valid; a bundle failing any of these is rejected with its reason;
2. per device, open (decrypt) its bundles in ledger order and rebuild the
   device's ledger from their segments: each segment continues the one
   before (its base is a record already seen, its first record's `prev` is
   that record's hash, sequence numbers are contiguous, every record is
   signed by the device key and well formed), and the result contains the
   head the collector witnessed and everything an earlier run applied
   (org/heads.py). A gap, a fork, a rewritten record or a rolled-back store
   rejects all of that device's bundles;
3. fold the ledger into a `Coverage`, apply it to each bundle's events,
   shape the kept ones into events rows and derive the actions rows
   (org/bundle_rows.py), and write both tables (org.dataset).

Steps 1 and 2 are org/fleet.py (shared with the audit; each bundle is read and
opened by org/bundle_reader.py), the ledger is rebuilt in org/segments.py, the
per-bundle part of step 3 is org/ingest_bundle.py, the report is
org/ingest_summary.py. The decisions per device (step 2, the coverage) and the
dataset's writes are made here, once; `_Run.group` and `_Run.devices` are
where the per-bundle work is scheduled.

The dataset then holds exactly the rows of the bundles ingested by this run:
rows of bundles rejected now, or gone from the source, are removed too.
Re-runs are cheap where nothing changed: a bundle whose coverage key (what
decides its rows) is the one in the manifest, with its files present, is not
written again.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cleartrace.consent.coverage import Coverage, coverage_of
from cleartrace.errors import UsageError
from cleartrace.faults import fault_point
from cleartrace.org import ENGINES, FORMATS
from cleartrace.org.blobstore import BlobStore, S3Store, open_store
from cleartrace.org.dataset import Dataset
from cleartrace.org.dataset_table import open_dataset
from cleartrace.org.fleet import DeviceLedger, Fleet, FleetBundle
from cleartrace.org.heads import AcceptedHeads, HeadChecks
from cleartrace.org.ingest_bundle import Derived, bundle_work
from cleartrace.org.ingest_summary import IngestSummary, Rejection
from cleartrace.org.keys import BundleKeys, load_bundle_keys
from cleartrace.org.org_ledger import OrgLedgerFile, default_path, load_ledger_key
from cleartrace.org.receipts import signed_by
from cleartrace.org.registry_db import read_devices
from cleartrace.org.witness import load_public

__all__ = ["ingest"]

log = logging.getLogger(__name__)


class _Run:
    """One ingest run: the source, the keys, the dataset and the summary so far."""

    def __init__(
        self,
        store: BlobStore,
        org: BundleKeys,
        dataset: Dataset,
        formats: Sequence[str],
        heads: HeadChecks,
        receipt_ok: Callable[[Mapping[str, Any]], bool],
    ) -> None:
        self.heads = heads
        self.store = store
        self.dataset = dataset
        self.formats = formats
        self.summary = IngestSummary()
        self.fleet = Fleet(store, org, heads, self.reject, receipt_ok=receipt_ok)

    def reject(self, name: str, device: str | None, reason: str, detail: str) -> None:
        log.info("bundle %s rejected: %s", name[:16], reason)
        self.summary.rejected.append(Rejection(name, device, reason, detail))

    def device(
        self, device: str, items: list[FleetBundle], witnessed: Mapping[str, Any] | None
    ) -> None:
        found = self.fleet.device(device, items, witnessed)
        coverage = self.covered(device, found)
        if found is not None and coverage is not None:
            for item in found.bundles:
                self.write(item, coverage)

    def covered(self, device: str, found: DeviceLedger | None) -> Coverage | None:
        """What the device's ledger allows, decided once for all its bundles; None
        when it is refused. Its accepted head is saved first."""
        if found is None:
            return None
        if found.refused is not None or found.records is None:
            self.summary.devices_rejected[device] = str(found.refused)
            return None
        records, opened = found.records, found.bundles
        self.heads.accept(device, records, found.head)
        # Saved before any of the device's files: a crash from here on leaves the
        # head that carried a withdrawal remembered, so a store rolled back
        # afterwards is refused rather than bringing the withdrawn rows back.
        self.heads.accepted.save()
        self.dataset.heads_tracked = True
        return coverage_of(records).with_bundles((i.session, i.head[0], i.base[0]) for i in opened)

    def unchanged(self, item: FleetBundle, key: str) -> bool:
        """Whether the dataset holds `item`'s rows under this coverage key already."""
        if not self.dataset.up_to_date(item.name, key, self.formats):
            return False
        self.summary.bundles_unchanged += 1
        self.summary.add(item.name, self.dataset.bundles[item.name])
        return True

    def write(self, item: FleetBundle, coverage: Coverage) -> None:
        key = coverage.key(item.session, item.head[0], item.base[0])
        if not self.unchanged(item, key):
            self.written(item, bundle_work(self.fleet, item, coverage, key))

    def written(self, item: FleetBundle, derived: Derived | None) -> None:
        """Write a bundle's rows (none when it was rejected) and count them."""
        if derived is None:
            return
        result = self.dataset.write(item.name, derived.entry, derived.tables, self.formats)
        self.summary.files_written += len(result.written)
        self.summary.files_removed += len(result.removed)
        self.summary.add(item.name, derived.entry)

    def group(self, names: list[str], done: Callable[[], object]) -> dict[str, list[FleetBundle]]:
        """The bundles that pass their checks, by device."""
        return self.fleet.group(names, done)

    def devices(
        self, by_device: dict[str, list[FleetBundle]], heads: Mapping[str, Any]
    ) -> Iterator[str]:
        """Ingest each device in turn, naming each once its rows are written."""
        for device in sorted(by_device):
            self.device(device, by_device[device], heads.get(device))
            yield device


def _bar(total: int, what: str, progress: bool) -> tqdm[Any]:
    return tqdm(total=total, desc=what, unit="bundle", disable=not progress, file=sys.stderr)


def ingest(
    source: str,
    keys: Path,
    out: Path,
    *,
    formats: Sequence[str] = FORMATS,
    progress: bool = False,
    endpoint_url: str | None = None,
    witness_key: Path | None = None,
    heads_from: Path | str | None = None,
    org_ledger: Path | None = None,
    table: str = "directory",
    catalog: str | None = None,
    engine: str = "inprocess",
    address: str | None = None,
) -> IngestSummary:
    """Ingest every bundle under `source` into the dataset directory `out`.

    With `witness_key` (the collector's witness.pub), every device's witnessed
    head must be there, signed by it and name that device; with `heads_from`
    (the collector's data directory), its registry is the authority on heads.
    Either way no device is ingested whose head or ledger is older than what
    this dataset accepted before (org/heads.py).

    The run is recorded in the officer side's org ledger (`org_ledger`, by
    default next to the dataset; org/org_ledger.py), signed by KEYS/ledger.key:
    how many bundles and rows, and the SHA-256 of the manifest written.

    `table` "iceberg" keeps the rows in Iceberg tables of the SQL catalog
    `catalog` (default: a SQLite file in `out`) instead of files
    (org/dataset_table.py); Parquet is then the only format.

    `engine` "ray" runs the per-bundle work on the Ray cluster at `address`
    (org/ingest_ray.py; a new local one when None, whatever RAY_ADDRESS says);
    the decisions per device and the dataset stay in this process, and the
    result is the in-process one.

    Raises:
        UsageError: a bad source, format or dataset directory; a dataset built
            with another organisation key.
        KeyStorageError: the keys cannot be loaded.
        StoreError: the source cannot be listed, or a bundle in it cannot be
            read (here or on a Ray worker): the dataset is left as it was.
        DiskFull: no room for the dataset.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise UsageError(f"unknown dataset format; choose from {', '.join(FORMATS)}")
    if table == "iceberg" and "parquet" not in formats:
        raise UsageError("Iceberg tables are Parquet only; leave out --format with --table iceberg")
    if engine not in ENGINES:
        raise UsageError(f"unknown ingest engine {engine!r}; choose from {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise UsageError("a cluster address is for '--engine ray'; add it or drop --address")
    org = load_bundle_keys(keys)
    ledger = OrgLedgerFile(
        default_path(out) if org_ledger is None else org_ledger, load_ledger_key(keys)
    )
    witness = None if witness_key is None else load_public(witness_key)
    registry = None if heads_from is None else read_devices(heads_from)
    store = open_store(source, endpoint_url=endpoint_url)
    if isinstance(store, S3Store):
        store.check()
    elif not store.root.is_dir():
        raise UsageError(f"{source} is not a directory; give the collector's store directory")
    dataset = open_dataset(out, org.bundle_public.fingerprint, table, catalog)
    with dataset.locked():
        swept = dataset.sweep()  # an interrupted run's files, not in the manifest
        # With the registry the file is not needed: the authority stands in for it.
        accepted = AcceptedHeads(out, required=dataset.heads_tracked and registry is None)
        heads = HeadChecks(accepted, witness, registry)
        args = (store, org, dataset, tuple(formats), heads, signed_by(keys))
        if engine == "ray":
            from cleartrace.org.ingest_ray import RayRun, Workers  # loads Ray
            from cleartrace.org.ray_connect import connected

            with connected(address):
                # Absolute: a worker's working directory is not this process's.
                where = source if isinstance(store, S3Store) else str(store.root.resolve())
                workers = Workers(where, endpoint_url, str(keys.resolve()))
                summary = _ingest(RayRun(*args, workers=workers), progress)
        else:
            summary = _ingest(_Run(*args), progress)
        summary.files_removed += len(swept)
        dataset.settle(ledger)  # what was deleted is then gone from the disk too
        manifest = hashlib.sha256(dataset.manifest_path.read_bytes()).hexdigest()
        ledger.append(
            "ingest.run",
            bundles=summary.bundles_ingested,
            rows=summary.events_kept,
            digest=manifest,
        )
    log.info(
        "ingest: %d bundles read, %d ingested, %d rejected; %d events kept",
        summary.bundles_read,
        summary.bundles_ingested,
        len(summary.rejected),
        summary.events_kept,
    )
    return summary


def _ingest(run: _Run, progress: bool) -> IngestSummary:
    dataset = run.dataset
    heads = run.fleet.witnessed_heads()
    names = run.fleet.bundle_names()
    run.summary.bundles_read = len(names)
    with _bar(len(names), "verifying", progress) as bar:
        by_device = run.group(names, bar.update)
    run.summary.devices = len(by_device)
    with _bar(sum(map(len, by_device.values())), "ingesting", progress) as bar:
        for device in run.devices(by_device, heads):
            fault_point("ingest.device")
            dataset.save()  # a crash loses at most one device's bookkeeping
            fault_point("ingest.saved")
            bar.update(len(by_device[device]))
    ingested = {item.name for items in by_device.values() for item in items} - {
        r.bundle for r in run.summary.rejected
    }
    _vanished(run, set(by_device))
    for name in sorted(set(dataset.bundles) - ingested):
        run.summary.files_removed += len(dataset.drop(name))
    run.heads.accepted.save()  # created on a first run, so the manifest's mark holds
    dataset.heads_tracked = True
    dataset.save()
    return run.summary


def _vanished(run: _Run, present: set[str]) -> None:
    """Reject every device known to have bundles of which the store now has none.

    Removing all of a device's bundles and its head file would otherwise make
    it look like a device never seen: its rows would go, quietly, and with
    them any sign that its ledger (and the withdrawals in it) was taken away.
    Known are the devices an earlier run applied records of, and with
    `--heads-from` those the collector witnessed an upload of; a device whose
    bundles are there but none could be read counts as missing too. Their
    accepted heads are kept, so they stay refused until the bundles are back.
    """
    known = {d for d, e in run.heads.accepted.devices.items() if int(e["ledger"]["seq"]) >= 1}
    if run.heads.registry is not None:
        known |= {d for d, dev in run.heads.registry.items() if dev.head_bundle is not None}
    # An erased subject's devices are gone on purpose, with a receipt (org/subjects.py).
    for device in sorted(known - present - run.fleet.erased_devices):
        log.info("device %s rejected: bundles-missing", device[:23])
        run.summary.devices_rejected[device] = "bundles-missing"
