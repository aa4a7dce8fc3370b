"""Every device's verified ledger from a collector's store: what ingest and the audit share.

Both read the store the same way, so a ledger the audit calls intact is one
ingest would apply, and a device ingest refuses the audit names with the same
reason:

1. the witnessed heads (heads/<device>.json) are read before the bundles are
   listed: the collector stores a bundle before its head, so every head read
   has its bundle in the listing;
2. every bundle is read and checked without the organisation's key: its name
   is the SHA-256 of its bytes, its header well formed, its device signature
   valid; a bundle failing any of these is rejected with its reason;
3. per device, its bundles are opened (decrypted) in ledger order and the
   ledger rebuilt from their segments (org/segments.py), then checked against
   the witnessed head and whatever the `HeadChecks` were given (org/heads.py).

A subject the organisation erased (`org subject erase`, org/subjects.py) has
a receipt under erased/ in the store, signed by the organisation's key
(org/receipts.py): its bundles, should any come again (a device
re-uploading), and its devices' heads are passed over, so neither ingest nor
the audit brings erased data back. A receipt the key did not sign erases nothing.

`Fleet.device` gives a `DeviceLedger`: the device's bundles, its records and
witnessed head, or the reason it was refused; `Fleet.assemble` gives it from
bundles opened elsewhere (one bundle is read and opened by
org/bundle_reader.py, which `Fleet` extends). Bundle bytes and event tables
are kept in memory up to a budget and read again beyond it.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.errors import DeviceRefused, LedgerBroken, StoreError
from cleartrace.org.blobstore import BlobStore
from cleartrace.org.bundle_reader import MEMORY_BUDGET, BundleReader, FleetBundle, Reject
from cleartrace.org.heads import HeadChecks, WitnessedHead
from cleartrace.org.keys import BundleKeys
from cleartrace.org.segments import Segment, assemble_ledger
from cleartrace.upload.bundle import BundleBody

__all__ = ["DeviceLedger", "Fleet", "FleetBundle", "Reject", "gc_paused", "segment_of"]


def segment_of(item: FleetBundle, body: BundleBody) -> Segment:
    """The ledger segment an opened bundle carries, as the ledger is rebuilt from."""
    return Segment(item.name, item.base, item.head, body.ledger, body.ledger_lines)


@dataclass
class DeviceLedger:
    """One device as the store shows it: its opened bundles in ledger order, its
    rebuilt ledger and witnessed head, or why it was refused.

    `records` is the rebuilt ledger even when the head check refused the
    device (the chain itself holds); None when the chain does not.
    """

    fingerprint: str
    public_key: Ed25519PublicKey
    subject: str
    bundles: list[FleetBundle]
    records: list[dict[str, Any]] | None
    head: WitnessedHead | None
    #: The reason id the device was refused for, and one line saying why.
    refused: str | None = None
    detail: str = ""
    #: The first ledger record not proven, when the chain is broken.
    broken_seq: int | None = None
    #: Each record's canonical bytes, beside `records`.
    lines: list[bytes] = field(default_factory=list, repr=False)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block; what it made is then
    frozen out of later passes (`gc.freeze`), and the collector is as it was.

    Reading a fleet's ledgers makes millions of containers (a dict per record)
    that stay alive and hold no cycles; each generational pass walks all of
    them and frees nothing: about a fifth of an audit's time, and again in
    every pass while the report is drawn. Reference counting still frees
    them as usual when they are dropped.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


class Fleet(BundleReader):
    """Reads one collector store with the organisation's keys; each refusal goes to `reject`."""

    def __init__(
        self,
        store: BlobStore,
        org: BundleKeys,
        heads: HeadChecks,
        reject: Reject,
        *,
        keep_events: bool = True,
        every_signature: bool = False,
        receipt_ok: Callable[[Mapping[str, Any]], bool] | None = None,
        report_unreadable: bool = False,
    ) -> None:
        super().__init__(store, org, reject, report_unreadable=report_unreadable)
        #: Which erasure receipts erase (org/receipts.py `signed_by`): without it none
        #: does, so a receipt planted by whoever can write the store hides nothing.
        self.receipt_ok = receipt_ok
        self.every_signature = every_signature
        self.heads = heads
        self.keep_events = keep_events
        #: Subjects with an erasure receipt in the store, and their devices.
        self.erased_subjects: set[str] = set()
        self.erased_devices: set[str] = set()
        #: Bundles of erased subjects found in the store and passed over.
        self.erased_bundles = 0

    def _read_erased(self) -> None:
        """The erasure receipts' subjects and devices.

        A receipt read and found malformed or unsigned erases nothing (whoever
        can write the store must not hide a subject with one). A receipt that
        cannot be read at all stops the run (`StoreError`), as a bundle does:
        passing it over would write an erased subject's rows back.
        """
        for key in self.store.list("erased/"):
            raw = self._read_listed(key, "erasure receipt")
            try:
                obj = json.loads(raw)
                subject, devices = str(obj["subject"]), [str(d) for d in obj["devices"]]
            except (ValueError, KeyError, TypeError):
                continue
            if self.receipt_ok is None or not self.receipt_ok(obj):
                continue
            self.erased_subjects.add(subject)
            self.erased_devices.update(devices)

    def _read_listed(self, key: str, what: str) -> bytes:
        """A listed store file's bytes (a head file, an erasure receipt).

        Raises:
            StoreError: they cannot be read (a missing mount, no permission, a
                store error): this process's environment, not the file, so the
                run stops before anything is changed, as for a bundle.
        """
        try:
            return self.store.get(key)
        except StoreError as exc:
            raise StoreError(
                f"cannot read {what} {key} from {self.store.describe()} ({exc}); nothing "
                "was changed: make the store readable here (its path or mount, "
                "credentials, permissions) and run again"
            ) from None

    def witnessed_heads(self) -> dict[str, dict[str, Any]]:
        """Head files by device fingerprint, read before the bundles are listed."""
        self._read_erased()
        heads: dict[str, dict[str, Any]] = {}
        for key in self.store.list("heads/"):
            device_hex = key.removeprefix("heads/").removesuffix(".json")
            if "sha256:" + device_hex in self.erased_devices:
                continue
            try:
                obj = json.loads(self._read_listed(key, "head file"))
            except StoreError:
                if not self.report_unreadable:
                    raise
                obj = {"unreadable": key}  # the audit names it and goes on
            except ValueError:
                obj = None
            # A damaged head refuses that device (its ledger cannot be checked
            # against it), not the whole run: other devices' withdrawals must apply.
            heads["sha256:" + device_hex] = obj if isinstance(obj, dict) else {"unreadable": key}
        return heads

    def bundle_names(self) -> list[str]:
        return [
            k.removeprefix("bundles/").removesuffix(".ctb") for k in self.store.list("bundles/")
        ]

    def group(
        self, names: Iterable[str], done: Callable[[], object] = lambda: None
    ) -> dict[str, list[FleetBundle]]:
        """The bundles that pass `check`, by device; `done` is called after each name."""
        by_device: dict[str, list[FleetBundle]] = defaultdict(list)
        for name in names:
            item = self.check(name)
            if item is not None and (
                item.subject in self.erased_subjects or item.device in self.erased_devices
            ):
                self.erased_bundles += 1
            elif item is not None:
                by_device[item.device].append(item)
            done()
        return by_device

    def device(
        self, device: str, items: list[FleetBundle], witnessed: Mapping[str, Any] | None
    ) -> DeviceLedger | None:
        """The device's ledger from its bundles and head file; None if no bundle opened.

        A refused device's opened bundles are each rejected with its reason.
        """
        items.sort(key=lambda i: (i.base[0], i.head[0], i.name))
        opened: list[tuple[FleetBundle, Segment]] = []
        kept_bytes = 0
        for item in items:
            body = self.open(item)
            if body is None:
                continue
            events = body.events
            if self.keep_events and kept_bytes + events.nbytes <= MEMORY_BUDGET:
                item.events = events
                kept_bytes += events.nbytes
            opened.append((item, segment_of(item, body)))
        return self.assemble(device, opened, witnessed)

    def assemble(
        self,
        device: str,
        opened: list[tuple[FleetBundle, Segment]],
        witnessed: Mapping[str, Any] | None,
    ) -> DeviceLedger | None:
        """The device's ledger from its opened bundles (in ledger order, each with
        its ledger segment) and head file; None if none opened.

        The decision made once per device, wherever its bundles were opened.
        A refused device's opened bundles are each rejected with its reason.
        """
        segments = [segment for _, segment in opened]
        if not opened:
            return None
        first = opened[0][0]
        out = DeviceLedger(
            device, first.device_public_key, first.subject, [i for i, _ in opened], None, None
        )
        refusal: DeviceRefused | LedgerBroken | None = None
        try:
            out.head = self.heads.witnessed(device, witnessed)
        except DeviceRefused as exc:
            refusal = exc
        try:
            out.records, out.lines = assemble_ledger(
                first.device_public_key, segments, every_signature=self.every_signature
            )
        except LedgerBroken as exc:
            refusal = refusal or exc
            out.broken_seq = exc.seq
        if refusal is None and out.records is not None:
            try:
                self.heads.check(device, out.records, out.head)
            except DeviceRefused as exc:
                refusal = exc
        if refusal is not None:
            out.refused, out.detail = refusal.reason, str(refusal)
            for item in out.bundles:
                self.reject(item.name, device, refusal.reason, f"device {device[:23]}: {refusal}")
        return out
