"""A ledger segment rewritten by someone holding the device key: what a modified
device can do that only the witnessed head catches."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import make_record, record_hash, sign_record
from cleartrace.org.keys import OrgKeys, load_private
from cleartrace.upload.bundle import build_bundle, open_bundle, parse_bundle

__all__ = ["rewrite_the_withdrawal"]

#: Header fields `build_bundle` writes itself.
_BUILT = {"v", "type", "suite", "org_key", "device_public_key", "device"}


def rewrite_the_withdrawal(
    path: Path, keys_dir: Path, org: OrgKeys, device_key: Ed25519PrivateKey
) -> int:
    """The bundle at `path`, whose last record withdraws `keys`, replaced by one
    whose last record withdraws `scroll` instead, signed again by the device key,
    in a bundle built and signed again under its own name; the record's number."""
    bundle = parse_bundle(path.read_bytes())
    *kept, last = open_bundle(bundle, load_private(keys_dir)).ledger
    assert last["kind"] == "consent.withdrawn"
    fields = {"categories": ["scroll"], "policy": last["policy"]}
    rewritten = sign_record(
        make_record(seq=last["seq"], prev=last["prev"], kind=last["kind"], fields=fields),
        device_key,
    )
    header = {k: v for k, v in bundle.header.items() if k not in _BUILT}
    header["ledger"] = {
        **header["ledger"],
        "head": {"seq": last["seq"], "hash": record_hash(rewritten)},
    }
    raw = build_bundle(
        header_fields=header,
        ledger=[*kept, rewritten],
        events_ipc=b"",
        org_key=org.bundle_public,
        device_key=device_key,
    )
    path.unlink()
    (path.parent / f"{hashlib.sha256(raw).hexdigest()}.ctb").write_bytes(raw)
    return int(last["seq"])
