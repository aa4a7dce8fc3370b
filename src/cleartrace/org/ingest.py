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
3. fold the ledger into a `Coverage`, apply it to each bundle's events and
   write the kept rows (org.dataset).

The ledger is rebuilt in org/segments.py, the report is org/ingest_summary.py.

The dataset then holds exactly the rows of the bundles ingested by this run:
rows of bundles rejected now, or gone from the source, are removed too.
Re-runs are cheap where nothing changed: a bundle whose coverage key (what
decides its rows) is the one in the manifest, with its files present, is not
written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tqdm import tqdm

from cleartrace.consent.coverage import Coverage, coverage_of
from cleartrace.errors import BundleError, DeviceRefused, LedgerBroken, StoreError, UsageError
from cleartrace.faults import fault_point
from cleartrace.org import FORMATS
from cleartrace.org.blobstore import BlobStore, S3Store, bundle_key, open_store
from cleartrace.org.dataset import BundleEntry, Dataset
from cleartrace.org.heads import AcceptedHeads, HeadChecks
from cleartrace.org.ingest_summary import IngestSummary, Rejection
from cleartrace.org.keys import BundleKeys, load_bundle_keys
from cleartrace.org.registry_db import read_devices
from cleartrace.org.segments import assemble_ledger
from cleartrace.org.witness import load_public
from cleartrace.upload.bundle import Bundle, open_bundle, parse_bundle, verify_signature

__all__ = ["ingest"]

log = logging.getLogger(__name__)

#: Decrypted event tables kept between reading a device's ledger and writing
#: its rows; beyond this they are decrypted again (bundles are re-read too).
_MEMORY_BUDGET = 1 << 30


@dataclass
class _Item:
    """A bundle that passed the checks that need no key but the device's."""

    name: str
    device: str
    device_public_key: Ed25519PublicKey
    subject: str
    session: str | None
    base: tuple[int, str]
    head: tuple[int, str]
    raw: bytes | None = None
    events: pa.Table | None = None


class _Run:
    """One ingest run: the source, the keys, the dataset and the summary so far."""

    def __init__(
        self,
        store: BlobStore,
        org: BundleKeys,
        dataset: Dataset,
        formats: Sequence[str],
        heads: HeadChecks,
    ) -> None:
        self.heads = heads
        self.store = store
        self.org = org
        self.dataset = dataset
        self.formats = formats
        self.summary = IngestSummary()
        self.cached = 0

    def reject(self, name: str, device: str | None, reason: str, detail: str) -> None:
        log.info("bundle %s rejected: %s", name[:16], reason)
        self.summary.rejected.append(Rejection(name, device, reason, detail))

    def read(self, name: str) -> bytes | None:
        try:
            raw = self.store.get(bundle_key(name))
        except StoreError as exc:
            self.reject(name, None, "unreadable", str(exc))
            return None
        if hashlib.sha256(raw).hexdigest() != name:
            self.reject(
                name,
                None,
                "name-mismatch",
                f"bundle {name[:16]}: its bytes do not hash to its name (changed or truncated "
                "in storage)",
            )
            return None
        return raw

    def check(self, name: str) -> _Item | None:
        """Read, parse and verify one bundle's signature; None if rejected."""
        raw = self.read(name)
        if raw is None:
            return None
        try:
            bundle = parse_bundle(raw)
            verify_signature(bundle)
        except BundleError as exc:
            self.reject(name, None, exc.reason, str(exc))
            return None
        item = _item(bundle)
        if self.cached + len(raw) <= _MEMORY_BUDGET:
            item.raw = raw
            self.cached += len(raw)
        return item

    def open(self, item: _Item) -> tuple[list[dict[str, Any]], pa.Table] | None:
        raw = item.raw if item.raw is not None else self.read(item.name)
        item.raw = None
        if raw is None:
            return None
        try:
            body = open_bundle(parse_bundle(raw), self.org)
        except BundleError as exc:
            self.reject(item.name, item.device, exc.reason, str(exc))
            return None
        return body.ledger, body.events

    def device(self, device: str, items: list[_Item], witnessed: Mapping[str, Any] | None) -> None:
        items.sort(key=lambda i: (i.base[0], i.head[0], i.name))
        opened: list[_Item] = []
        segments = []
        kept_bytes = 0
        for item in items:
            body = self.open(item)
            if body is None:
                continue
            ledger, events = body
            if kept_bytes + events.nbytes <= _MEMORY_BUDGET:
                item.events = events
                kept_bytes += events.nbytes
            opened.append(item)
            segments.append((item.name, item.base, item.head, ledger))
        if not opened:
            return
        try:
            head = self.heads.witnessed(device, witnessed)
            records = assemble_ledger(opened[0].device_public_key, segments)
            self.heads.check(device, records, head)
        except (DeviceRefused, LedgerBroken) as exc:
            self.summary.devices_rejected[device] = exc.reason
            for item in opened:
                self.reject(item.name, device, exc.reason, f"device {device[:23]}: {exc}")
            return
        self.heads.accept(device, records, head)
        # Saved before any of the device's files: a crash from here on leaves the
        # head that carried a withdrawal remembered, so a store rolled back
        # afterwards is refused rather than bringing the withdrawn rows back.
        self.heads.accepted.save()
        self.dataset.heads_tracked = True
        coverage = coverage_of(records).with_bundles(
            (i.session, i.head[0], i.base[0]) for i in opened
        )
        for item in opened:
            self.write(item, coverage)

    def write(self, item: _Item, coverage: Coverage) -> None:
        key = coverage.key(item.session, item.head[0], item.base[0])
        if self.dataset.up_to_date(item.name, key, self.formats):
            self.summary.bundles_unchanged += 1
            self.summary.add(item.name, self.dataset.bundles[item.name])
            return
        events = item.events
        if events is None:
            body = self.open(item)
            if body is None:
                return
            events = body[1]
        item.events = None
        outcome = coverage.apply(
            events, session=item.session, head_seq=item.head[0], base_seq=item.base[0]
        )
        entry = BundleEntry(
            device=item.device,
            subject=item.subject,
            session=item.session,
            key=key,
            digest=outcome.digest,
            rows=outcome.kept,
            dropped=outcome.dropped,
            titles_removed=outcome.titles_removed,
            violations=outcome.violations,
        )
        result = self.dataset.write(item.name, entry, outcome.events, self.formats)
        self.summary.files_written += len(result.written)
        self.summary.files_removed += len(result.removed)
        self.summary.add(item.name, entry)


def _item(bundle: Bundle) -> _Item:
    return _Item(
        name=bundle.name,
        device=bundle.device,
        device_public_key=bundle.device_public_key,
        subject=str(bundle.header["subject"]),
        session=bundle.session,
        base=bundle.base,
        head=bundle.head,
    )


def _heads(store: BlobStore) -> dict[str, dict[str, Any]]:
    """Witnessed heads by device fingerprint, read before the bundles are listed:
    the collector stores a bundle before its head, so every head read here
    has its bundle in the listing that follows."""
    heads: dict[str, dict[str, Any]] = {}
    for key in store.list("heads/"):
        device_hex = key.removeprefix("heads/").removesuffix(".json")
        try:
            obj = json.loads(store.get(key))
        except (StoreError, ValueError):
            obj = None
        # An unreadable head rejects that device (its ledger cannot be checked
        # against it), not the whole run: other devices' withdrawals must apply.
        heads["sha256:" + device_hex] = obj if isinstance(obj, dict) else {"unreadable": key}
    return heads


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
    heads_from: Path | None = None,
) -> IngestSummary:
    """Ingest every bundle under `source` into the dataset directory `out`.

    With `witness_key` (the collector's witness.pub), every device's witnessed
    head must be there, signed by it and name that device; with `heads_from`
    (the collector's data directory), its registry is the authority on heads.
    Either way no device is ingested whose head or ledger is older than what
    this dataset accepted before (org/heads.py).

    Raises:
        UsageError: a bad source, format or dataset directory; a dataset built
            with another organisation key.
        KeyStorageError: the keys cannot be loaded.
        StoreError: the source cannot be listed.
        DiskFull: no room for the dataset.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise UsageError(f"unknown dataset format; choose from {', '.join(FORMATS)}")
    org = load_bundle_keys(keys)
    witness = None if witness_key is None else load_public(witness_key)
    registry = None if heads_from is None else read_devices(heads_from)
    store = open_store(source, endpoint_url=endpoint_url)
    if isinstance(store, S3Store):
        store.check()
    elif not store.root.is_dir():
        raise UsageError(f"{source} is not a directory; give the collector's store directory")
    dataset = Dataset(out, org.bundle_public.fingerprint)
    with dataset.locked():
        swept = dataset.sweep()  # an interrupted run's files, not in the manifest
        # With the registry the file is not needed: the authority stands in for it.
        accepted = AcceptedHeads(out, required=dataset.heads_tracked and registry is None)
        heads = HeadChecks(accepted, witness, registry)
        summary = _ingest(_Run(store, org, dataset, tuple(formats), heads), progress)
        summary.files_removed += len(swept)
    log.info(
        "ingest: %d bundles read, %d ingested, %d rejected; %d events kept",
        summary.bundles_read,
        summary.bundles_ingested,
        len(summary.rejected),
        summary.events_kept,
    )
    return summary


def _ingest(run: _Run, progress: bool) -> IngestSummary:
    store, dataset = run.store, run.dataset
    heads = _heads(store)
    names = [k.removeprefix("bundles/").removesuffix(".ctb") for k in store.list("bundles/")]
    run.summary.bundles_read = len(names)
    by_device: dict[str, list[_Item]] = defaultdict(list)
    with _bar(len(names), "verifying", progress) as bar:
        for name in names:
            item = run.check(name)
            if item is not None:
                by_device[item.device].append(item)
            bar.update()
    run.summary.devices = len(by_device)
    with _bar(sum(map(len, by_device.values())), "ingesting", progress) as bar:
        for device in sorted(by_device):
            run.device(device, by_device[device], heads.get(device))
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
    for device in sorted(known - present):
        log.info("device %s rejected: bundles-missing", device[:23])
        run.summary.devices_rejected[device] = "bundles-missing"
