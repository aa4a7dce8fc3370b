"""One stored bundle read, checked and opened: the per-bundle steps every engine runs.

`BundleReader.check` reads a bundle and checks what needs no key but the
device's (its name is the SHA-256 of its bytes, its header well formed, its
device signature valid); `BundleReader.open` decrypts it with the
organisation's key. `org.fleet.Fleet` runs them over a whole store in this
process; the Ray engine (org/ingest_ray.py) runs the very same methods in its
workers, each with a reader of its own over the same store, so a bundle is
judged alike whichever engine reads it. Each refusal goes to `reject`: a
refusal is about bytes that were read and failed a check; bytes that cannot
be read at all stop the run (`StoreError`), but for the audit, which names
them (`report_unreadable`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.errors import BundleError, StoreError
from cleartrace.org.blobstore import BlobStore, bundle_key
from cleartrace.org.keys import BundleKeys
from cleartrace.upload.bundle import (
    Bundle,
    BundleBody,
    open_bundle,
    parse_bundle,
    verify_signature,
)

__all__ = ["MEMORY_BUDGET", "BundleReader", "FleetBundle", "Reject"]

#: Bundle bytes, and separately decrypted event tables, kept between reading a
#: device's ledger and using its events; beyond this they are read again.
MEMORY_BUDGET = 1 << 30

#: Told of every bundle not used: (bundle name, device or None, reason id, one line).
Reject = Callable[[str, "str | None", str, str], None]


@dataclass
class FleetBundle:
    """A bundle that passed the checks that need no key but the device's."""

    name: str
    device: str
    device_public_key: Ed25519PublicKey
    subject: str
    session: str | None
    base: tuple[int, str]
    head: tuple[int, str]
    #: The header as the device signed it (counts, redactions, policy, interval...).
    header: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The bundle as checked, kept (up to the memory budget) until it is opened.
    parsed: Bundle | None = field(default=None, repr=False)
    events: pa.Table | None = field(default=None, repr=False)


def _bundle(bundle: Bundle) -> FleetBundle:
    return FleetBundle(
        name=bundle.name,
        device=bundle.device,
        device_public_key=bundle.device_public_key,
        subject=str(bundle.header["subject"]),
        session=bundle.session,
        base=bundle.base,
        head=bundle.head,
        header=bundle.header,
    )


class BundleReader:
    """Reads single bundles of one store with the organisation's keys."""

    def __init__(
        self, store: BlobStore, org: BundleKeys, reject: Reject, *, report_unreadable: bool = False
    ) -> None:
        self.store = store
        self.org = org
        self.reject = reject
        #: The audit, which changes nothing, names a bundle it cannot read (reason
        #: `unreadable`) and goes on; ingest stops (see `_fetch`).
        self.report_unreadable = report_unreadable
        #: What the run is called in its errors ("ingest", "erasure", "export").
        self.task = "ingest"
        self._cached = 0

    def _fetch(self, name: str) -> bytes | None:
        """The bundle's bytes as stored.

        Raises:
            StoreError: they cannot be read. That is this process's environment
                failing (a missing path or mount, no credentials, no permission),
                not the bundle: rejecting it would drop its rows from the
                dataset, so the run stops instead, before anything is changed.
        """
        try:
            return self.store.get(bundle_key(name))
        except StoreError as exc:
            if self.report_unreadable:
                self.reject(name, None, "unreadable", str(exc))
                return None
            raise StoreError(
                f"cannot read bundle {name[:16]} from {self.store.describe()} ({exc}); "
                f"nothing in the dataset was changed. Make the store readable here (its "
                f"path or mount, credentials, permissions) and run {self.task} again; if "
                f"this bundle can never be read, restore {bundle_key(name)} from a backup, "
                "or remove it from the store: ingest then rejects its device as "
                "ledger-truncated (ledger-gap if a later bundle of it is there) and drops "
                "that device's rows until its ledger is whole again"
            ) from None

    def _misnamed(self, name: str) -> None:
        self.reject(
            name,
            None,
            "name-mismatch",
            f"bundle {name[:16]}: its bytes do not hash to its name (changed or truncated "
            "in storage)",
        )

    def read(self, name: str) -> bytes | None:
        """The bundle's bytes, if they hash to its name; else rejected, None."""
        raw = self._fetch(name)
        if raw is not None and hashlib.sha256(raw).hexdigest() != name:
            self._misnamed(name)
            return None
        return raw

    def check(self, name: str) -> FleetBundle | None:
        """Read, parse and verify one bundle's signature; None if rejected.

        Bytes that do not hash to their name are said to be that first, however
        else they fail; parsing hashes them once (`Bundle.name`)."""
        raw = self._fetch(name)
        if raw is None:
            return None
        try:
            bundle = parse_bundle(raw)
        except BundleError as exc:
            if hashlib.sha256(raw).hexdigest() != name:
                self._misnamed(name)
            else:
                self.reject(name, None, exc.reason, str(exc))
            return None
        if bundle.name != name:
            self._misnamed(name)
            return None
        try:
            verify_signature(bundle)
        except BundleError as exc:
            self.reject(name, None, exc.reason, str(exc))
            return None
        item = _bundle(bundle)
        if self._cached + len(raw) <= MEMORY_BUDGET:
            item.parsed = bundle
            self._cached += len(raw)
        return item

    def open(self, item: FleetBundle) -> BundleBody | None:
        """The bundle's ledger segment and events, or None (rejected)."""
        bundle, item.parsed = item.parsed, None
        try:
            if bundle is None:  # beyond the memory budget: read (and checked) again
                raw = self.read(item.name)
                if raw is None:
                    return None
                bundle = parse_bundle(raw)
            body = open_bundle(bundle, self.org)
        except BundleError as exc:
            self.reject(item.name, item.device, exc.reason, str(exc))
            return None
        return body
