"""The collector's witness: it stores a bundle, moves its device's witnessed
head, and keeps the head files in step with the registry.

Bundle first, then the registry (collector.db or PostgreSQL, org/state.py:
the durable record of every head and its witness counter), then
heads/<device>.json, the mirror ingest reads (signed with the witness key,
org/witness.py). Each device's head moves and its file is written under that
device's head lock, which the state provides (a database lock when several
processes share it), so a file is never overwritten with an older head;
`rewrite` repairs the mirrors a crash left behind or someone replaced. The
HTTP side (org/collector.py) calls `accept` on a worker thread once a bundle
has passed every other check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import LedgerBroken, StoreError
from cleartrace.formats import canonical, rfc3339
from cleartrace.org.answers import Refusal
from cleartrace.org.blobstore import BlobStore, bundle_key, head_key
from cleartrace.org.devices import Device, Head, StoredBundle
from cleartrace.org.state import CollectorState
from cleartrace.org.witness import HEAD_VERSION, sign_head
from cleartrace.upload.bundle import Bundle

__all__ = ["Accepted", "HeadWitness"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A bundle stored and its device's head moved to `head`."""

    device: str
    head: Head


class HeadWitness:
    """Stores bundles and moves witnessed heads for one registry and store."""

    def __init__(
        self, registry: CollectorState, store: BlobStore, witness: Ed25519PrivateKey | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        #: Signs the head files (org/witness.py); None writes them unsigned.
        self.witness = witness

    def accept(self, bundle: Bundle) -> StoredBundle | Accepted:
        """Check the witnessed head, store, move the head (worker thread, device lock held).

        Bundle first, then the registry, then the head file: the head file is
        never ahead of collector.db, so every counter a head file carries was
        committed and none is handed out twice. A crash after the bundle leaves
        one the device sends again (accepted then); a crash after the commit, a
        head file behind the registry, which `rewrite` puts right.

        Returns the stored bundle when it raced in on another connection.

        Raises:
            Refusal: "head-mismatch", the bundle does not build on the witnessed head.
            StoreError: the store or the registry cannot be written.
        """
        stored = self.registry.stored(bundle.name)  # raced in on another connection
        if stored is not None:
            return stored
        base, head = Head(*bundle.base), Head(*bundle.head)
        with self.registry.head_lock(bundle.device):
            # Another request, here or in another process of the fleet, may have
            # stored this very bundle or moved the head while this one waited.
            stored = self.registry.stored(bundle.name)
            if stored is not None:
                return stored
            device = self.registry.device(bundle.device)
            assert device is not None  # the collector checked it; devices are never removed
            if base != device.head:
                raise _head_mismatch(base, device.head)
            when = rfc3339(datetime.now(UTC))
            self.store.put(bundle_key(bundle.name), bundle.raw)
            try:
                moved = self.registry.accept(
                    name=bundle.name,
                    device=bundle.device,
                    size=len(bundle.raw),
                    base=base,
                    head=head,
                    when=when,
                )
            except LedgerBroken:  # only if the state was changed behind the lock's back
                current = self.registry.device(bundle.device)
                raise _head_mismatch(base, current.head if current else device.head) from None
            # The head file mirrors the state, which is the durable record (synced on
            # commit); `rewrite` repairs a mirror a crash left behind, so the file
            # is not synced on its own (that would be the slowest part of a small upload).
            self._put_head(moved)
        if self.registry.shared:
            self._catch_up(bundle.device, moved)
        return Accepted(device=bundle.device, head=head)

    def _put_head(self, device: Device) -> None:
        """Write the device's head file, unless the one in the store is newer.

        On a shared state the head lock is a database session, which can end
        (a restart, a failover) while its holder goes on: another collector
        may then have written a newer head file, which must not be rolled back.
        """
        key = head_key(device.hex)
        if self.registry.shared and _file_seq(self.store, key) > device.head.seq:
            return
        self.store.put(key, self._doc(device), durable=False)

    def _catch_up(self, device_id: str, moved: Device) -> None:
        """After the lock: if the state moved past `moved` meanwhile (our lock was
        lost and another collector accepted the next bundle), make sure the head
        file is not left behind the state by our late write."""
        latest = self.registry.device(device_id)
        if latest is not None and latest.head.seq > moved.head.seq:
            self._put_head(latest)

    def _doc(self, device: Device) -> bytes:
        """heads/<device>.json (docs/bundle-format.md): the witnessed head, the
        bundle that brought it, when, and the witness counter it was accepted
        under; signed with the witness key (Ed25519 is deterministic, so the
        same registry row always gives the same bytes)."""
        doc = {
            "v": HEAD_VERSION,
            "device": device.device,
            "seq": device.head.seq,
            "hash": device.head.hash,
            "bundle": device.head_bundle,
            "time": device.head_time,
            "counter": device.head_counter,
        }
        return canonical(doc) if self.witness is None else sign_head(doc, self.witness)

    def rewrite(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Make every heads/<device>.json match collector.db again; returns how many changed.

        Run at start-up, before serving (after a crash a head file may be
        behind or missing from what the registry holds), and then every
        `--recheck-heads` seconds while serving: a head file someone replaced
        in the store (an older one put back) is rewritten and logged, not left
        for ingest alone to notice. `stop()` true ends the pass before the next
        device (the collector shutting down). Each file is read and written under its
        device's head lock, from the registry's row as it is then, so an upload
        moving the same head meanwhile cannot be overwritten with an older one.

        Raises:
            StoreError: the store cannot be read or written.
        """
        changed: list[str] = []
        for listed in self.registry.devices():
            if stop():
                break
            with self.registry.head_lock(listed.device):
                device = self.registry.device(listed.device)
                if device is None or device.head_bundle is None:
                    continue
                doc = self._doc(device)
                key = head_key(device.hex)
                try:
                    current: bytes | None = self.store.get(key)
                except StoreError:
                    current = None
                if current != doc:
                    self.store.put(key, doc)
                    changed.append(device.hex[:16])
        if changed:
            named = ", ".join(changed[:10]) + (", …" if len(changed) > 10 else "")
            log.warning(
                "rewrote %d head file(s) to match the registry (devices %s): a crash or an "
                "upgrade left them behind, or someone else changed the store",
                len(changed),
                named,
            )
        return len(changed)


def _file_seq(store: BlobStore, key: str) -> int:
    """The seq of the head file at `key`; -1 when it is missing or cannot be parsed
    (`rewrite` repairs those)."""
    try:
        seq = json.loads(store.get(key)).get("seq")
    except (StoreError, ValueError, AttributeError):
        return -1
    return seq if isinstance(seq, int) else -1


def _head_mismatch(base: Head, witnessed: Head) -> Refusal:
    return Refusal(
        409,
        "head-mismatch",
        f"the bundle's ledger starts at record {base.seq}, but the collector witnessed this "
        f"device's ledger up to record {witnessed.seq}: a rewritten or truncated ledger, or "
        "a bundle built on a stale head",
        extra={"head": witnessed.as_json()},
    )
