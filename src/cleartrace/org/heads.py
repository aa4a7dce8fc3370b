"""Witnessed heads as ingest checks them: the collector's, this device's, and never older.

A witnessed head says how far a device's ledger had reached when the
collector accepted its bundle; ingest refuses a device whose bundles end
before it, since the records missing could be a withdrawal or a deletion.
Whoever can write the store could otherwise put back an older head file
together with removing the newest bundles, and the rows those records
removed would come back. Ingest holds three kinds of evidence against that:

- the head file in the store, signed by the collector's witness key
  (`--witness-key`): it must verify and name this very device (a valid head
  of another device copied over is "head-foreign");
- the collector's registry (`--heads-from DATA`), the authority where ingest
  can reach it: a store whose bundles end before the head the registry
  holds, while its head file is behind the registry, was rolled back
  ("head-rollback"), even on the first ingest into a new dataset;
- what this dataset accepted before (`DATASET/_cleartrace/heads.json`,
  trusted state the ML team owns): every signed head carries the collector's
  witness counter, which never goes down, so a head with a lower counter
  than one accepted before is an old one put back ("head-rollback"); and the
  ledger a run applied must still be there, record for record, next time
  ("ledger-rollback"). A device so refused has none of its rows in the
  dataset, and its accepted head stays as it was, so it stays refused until
  the store holds its bundles again: a withdrawal once honoured is never undone.

The device's ledger is itself a hash chain signed by the device, so a head
that is newer than the one accepted before extends it exactly when the
rebuilt ledger still holds the record accepted before with the same hash;
heads need no chain of their own for that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.records import GENESIS, record_hash
from cleartrace.errors import DeviceRefused, UsageError
from cleartrace.org.devices import Device
from cleartrace.org.witness import HEAD_VERSION, verify_head
from cleartrace.paths import write_private

__all__ = ["ACCEPTED_HEADS", "AcceptedHeads", "HeadChecks", "WitnessedHead"]

#: Where a dataset keeps the heads it accepted, next to its manifest.
ACCEPTED_HEADS = Path("_cleartrace") / "heads.json"
_STATE_TYPE = "cleartrace-accepted-heads"
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """A head the collector witnessed, from a head file or from its registry."""

    device: str
    seq: int
    hash: str
    #: The witness counter; None in a version-1 head file (written before counters).
    counter: int | None
    #: Signed by the witness key, or read from the registry: its counter can be relied on.
    trusted: bool = False
    #: Taken from the registry because the store's head file is missing or behind it.
    store_behind: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"counter": self.counter, "seq": self.seq, "hash": self.hash}


def _parse(obj: Mapping[str, Any]) -> WitnessedHead:
    """A head file's fields, checked for shape only (after its signature, where
    there is a witness key: until then none of it is worth reading).

    Raises:
        DeviceRefused: head-unreadable (damaged, or a format this version does not know).
    """
    version = obj.get("v", 1)
    if version not in (1, HEAD_VERSION):
        # The number only, and only a small one: the file's text is not shown.
        shown = f" {version}" if type(version) is int and 0 <= version < 1000 else ""
        raise DeviceRefused(
            "head-unreadable",
            f"the witnessed head has an unknown format version{shown}; ingest with the "
            "collector's version of ClearTrace or newer",
        )
    device, seq, digest = obj.get("device"), obj.get("seq"), obj.get("hash")
    counter = obj.get("counter") if version == HEAD_VERSION else None
    if (
        not isinstance(device, str)
        or type(seq) is not int
        or seq < 0
        or not isinstance(digest, str)
        or (version == HEAD_VERSION and (type(counter) is not int or counter < 1))
    ):
        raise DeviceRefused("head-unreadable", "the witnessed head is damaged")
    return WitnessedHead(device, seq, digest, counter)


def _older(new: WitnessedHead, old: Mapping[str, Any]) -> bool:
    """Whether `new` was witnessed before the head `old` accepted earlier."""
    old_counter, old_seq = old.get("counter"), int(old.get("seq", 0))
    if new.counter is None or old_counter is None:
        # A version-1 head after a counted one can only be an old file put back.
        return old_counter is not None or new.seq < old_seq
    return bool(new.counter < old_counter or new.seq < old_seq)


def _well_formed(entry: Any) -> bool:
    """An accepted-heads entry: {"ledger": {seq, hash}, "head": {counter, seq, hash} | null}."""

    def head(obj: Any, counted: bool) -> bool:
        return (
            isinstance(obj, dict)
            and type(obj.get("seq")) is int
            and isinstance(obj.get("hash"), str)
            and (not counted or obj.get("counter") is None or type(obj.get("counter")) is int)
        )

    return (
        isinstance(entry, dict)
        and head(entry.get("ledger"), False)
        and (entry.get("head") is None or head(entry.get("head"), True))
    )


class AcceptedHeads:
    """DATASET/_cleartrace/heads.json: per device, the ledger head a run applied
    and the witnessed head it accepted (0600, written all or nothing)."""

    def __init__(self, root: Path, *, required: bool = False) -> None:
        """Read the file; `required` when the dataset's manifest says it was written.

        Raises:
            UsageError: damaged, or `required` and missing (deleting it must not
                turn off the rollback checks).
        """
        self.path = root / ACCEPTED_HEADS
        self.devices: dict[str, dict[str, Any]] = {}
        self._changed = False
        self._kept = True
        try:
            obj = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if required:
                raise UsageError(
                    f"{self.path} is missing, and this dataset was built with it; restore it "
                    "from a backup, or ingest with --heads-from DATA (the collector's data "
                    "directory) so the collector's registry stands in for it"
                ) from None
            self._changed = True  # written by the first save, even with no device in it
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"cannot read {self.path} ({type(exc).__name__}); restore it from a backup, or "
                "ingest into a new dataset directory"
            ) from None
        if (
            not isinstance(obj, dict)
            or obj.get("type") != _STATE_TYPE
            or obj.get("v") != _STATE_VERSION
            or not isinstance(obj.get("devices"), dict)
            or not all(map(_well_formed, obj["devices"].values()))
        ):
            raise UsageError(
                f"{self.path} is not a ClearTrace accepted-heads file, or is damaged; restore "
                "it from a backup, or ingest into a new dataset directory"
            )
        self.devices = obj["devices"]

    @classmethod
    def none(cls) -> AcceptedHeads:
        """Nothing accepted before, and nothing kept: what a reader without a
        dataset (the audit) checks against. `save` writes nothing."""
        heads = cls.__new__(cls)
        heads.path, heads.devices, heads._changed, heads._kept = Path(), {}, False, False
        return heads

    def remember(self, device: str, entry: dict[str, Any]) -> None:
        if self.devices.get(device) != entry:
            self.devices[device] = entry
            self._changed = True

    def save(self) -> None:
        """Write the file all or nothing, if anything changed since it was read or
        written (or it did not exist).

        Raises:
            UsageError: the directory cannot be written.
            DiskFull: no room.
        """
        if not self._changed or not self._kept:
            return
        obj = {"v": _STATE_VERSION, "type": _STATE_TYPE, "devices": self.devices}
        with write_private(self.path, "accepted heads") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.write("\n")
        self._changed = False


class HeadChecks:
    """The checks of one ingest run, with the evidence it was given."""

    def __init__(
        self,
        accepted: AcceptedHeads,
        witness: Ed25519PublicKey | None = None,
        registry: Mapping[str, Device] | None = None,
    ) -> None:
        self.accepted = accepted
        self.witness = witness
        self.registry = registry

    def witnessed(self, device: str, obj: Mapping[str, Any] | None) -> WitnessedHead | None:
        """The head `device`'s ledger must reach, from its head file `obj` (or None)
        and the registry.

        Raises:
            DeviceRefused: unwitnessed, head-unreadable, head-forged, head-foreign.
        """
        found: WitnessedHead | None = None
        if obj is not None:
            if "unreadable" in obj:
                raise DeviceRefused(
                    "head-unreadable", f"the witnessed head {obj['unreadable']} cannot be read"
                )
            if self.witness is not None:
                try:
                    verify_head(obj, self.witness)
                except ValueError as exc:
                    raise DeviceRefused(
                        "head-forged", f"the witnessed head is not the collector's: {exc}"
                    ) from None
            trusted = self.witness is not None
            found = replace(_parse(obj), trusted=trusted)
            if found.device != device:
                # An unverified file's device field is anyone's text: named only when signed.
                named = f"device {found.device[:23]}" if trusted else "another device"
                raise DeviceRefused(
                    "head-foreign",
                    f"the head file names {named}: another device's head was copied over "
                    "this one's",
                )
        if self.registry is not None:
            return self._against_registry(device, found)
        if found is None and self.witness is not None:
            raise DeviceRefused(
                "unwitnessed", "the collector's store has no witnessed head for this device"
            )
        return found

    def _against_registry(self, device: str, found: WitnessedHead | None) -> WitnessedHead:
        """The registry's head, or the head file where it is signed and newer (an
        upload after the registry was read: the collector commits before it writes the file).

        Raises:
            DeviceRefused: unwitnessed, or head-forged (file and registry disagree).
        """
        assert self.registry is not None
        known = self.registry.get(device)
        if known is None or known.head_bundle is None:
            raise DeviceRefused(
                "unwitnessed", "the collector's registry holds no witnessed head for this device"
            )
        if found is not None and found.trusted and found.counter is not None:
            if found.counter > known.head_counter:
                return found
            if found.counter == known.head_counter:
                if (found.seq, found.hash) != tuple(known.head):
                    raise DeviceRefused(
                        "head-forged",
                        f"the head file and the collector's registry name different heads "
                        f"under witness counter {found.counter}",
                    )
                return found
        # Only a signed head can say the store is not behind: an unverified one's
        # counter is whatever whoever wrote it chose.
        behind = (
            found is None
            or not found.trusted
            or found.counter is None
            or found.counter < known.head_counter
        )
        return WitnessedHead(
            device, known.head.seq, known.head.hash, known.head_counter, True, behind
        )

    def check(
        self, device: str, records: Sequence[Mapping[str, Any]], head: WitnessedHead | None
    ) -> None:
        """The rebuilt ledger `records` must reach `head` and everything accepted before.

        Raises:
            DeviceRefused: ledger-truncated, ledger-rewritten, head-rollback,
                head-forged, ledger-rollback.
        """
        if head is not None and head.seq >= 1:
            if head.seq > len(records):
                if head.store_behind:
                    raise DeviceRefused(
                        "head-rollback",
                        f"the collector's registry witnessed record {head.seq} (witness counter "
                        f"{head.counter}), the bundles end at record {len(records)} and the "
                        "store's head file is older: the store was rolled back",
                    )
                raise DeviceRefused(
                    "ledger-truncated",
                    f"the collector witnessed record {head.seq}, the bundles end at record "
                    f"{len(records)}",
                )
            if record_hash(records[head.seq - 1]) != head.hash:
                raise DeviceRefused(
                    "ledger-rewritten",
                    f"record {head.seq} differs from the one the collector witnessed (the "
                    "ledger was rewritten)",
                )
        before = self.accepted.devices.get(device)
        if before is None:
            return
        old_head = before.get("head")
        if head is not None and head.trusted and isinstance(old_head, dict):
            if _older(head, old_head):
                raise DeviceRefused(
                    "head-rollback",
                    f"the witnessed head (record {head.seq}, witness counter {head.counter}) is "
                    f"older than the one an earlier ingest accepted (record {old_head.get('seq')}, "
                    f"counter {old_head.get('counter')}): an old head file was put back",
                )
            old = (old_head.get("counter"), old_head.get("seq"), old_head.get("hash"))
            if (
                head.counter is not None
                and head.counter == old[0]
                and (head.seq, head.hash) != old[1:]
            ):
                raise DeviceRefused(
                    "head-forged",
                    f"two different heads carry witness counter {head.counter}",
                )
        applied = before.get("ledger", {})
        seq = int(applied.get("seq", 0))
        if seq > len(records):
            raise DeviceRefused(
                "ledger-rollback",
                f"an earlier ingest applied this device's ledger up to record {seq}, the "
                f"bundles now end at record {len(records)}: bundles were removed from the store",
            )
        if seq >= 1 and record_hash(records[seq - 1]) != applied.get("hash"):
            raise DeviceRefused(
                "ledger-rewritten",
                f"record {seq} differs from the one an earlier ingest applied (the ledger was "
                "rewritten)",
            )

    def accept(
        self, device: str, records: Sequence[Mapping[str, Any]], head: WitnessedHead | None
    ) -> None:
        """Remember the ledger and head a device was ingested with (after `check` passed)."""
        before = self.accepted.devices.get(device, {})
        last = (len(records), record_hash(records[-1]) if records else GENESIS)
        entry: dict[str, Any] = {"ledger": {"seq": last[0], "hash": last[1]}}
        entry["head"] = head.as_json() if head is not None and head.trusted else before.get("head")
        self.accepted.remember(device, entry)
