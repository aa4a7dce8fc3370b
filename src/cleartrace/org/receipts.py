"""Erasure receipts: what `org subject erase` leaves in the store, and who may be believed.

A receipt under erased/<subject>.json makes ingest and the audit pass over the
subject's bundles and devices from then on (org/fleet.py), so a receipt is
honoured only when the organisation's signing key (KEYS/sign.key) signed it:
whoever can write the store without that key could otherwise hide a person's
data from ingest, or a device from the audit, with a receipt of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.formats import canonical, unb64url, verify_ed25519
from cleartrace.org.keys import load_signing_public

__all__ = ["RECEIPT_FIELDS", "RECEIPT_TYPE", "check_receipt", "signed_by"]

RECEIPT_TYPE = "cleartrace-erasure-receipt"
RECEIPT_FIELDS = frozenset(
    {"v", "type", "subject", "devices", "bundles", "dataset_files", "rows", "time", "signer", "sig"}
)


def check_receipt(obj: Mapping[str, Any], signer: Ed25519PublicKey) -> None:
    """Check an erasure receipt's shape and its signature by the organisation's key.

    Raises:
        ValueError: not a receipt, or not signed by `signer`.
    """
    if (
        not isinstance(obj, Mapping)
        or set(obj) != RECEIPT_FIELDS
        or obj.get("type") != RECEIPT_TYPE
    ):
        raise ValueError("not an erasure receipt")
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    try:
        signature = unb64url(str(obj["sig"]))
    except ValueError:
        raise ValueError("the erasure receipt's signature is not base64url") from None
    if not verify_ed25519(signer, signature, canonical(unsigned)):
        raise ValueError("the erasure receipt is not signed by the organisation's signing key")


def signed_by(keys: Path) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a receipt is signed by the organisation whose key directory is `keys`
    (KEYS/sign.pub, read at the first receipt, so a store without any needs none).

    Raises (when called):
        KeyStorageError: KEYS/sign.pub cannot be read.
    """
    signer: list[Ed25519PublicKey] = []

    def signed(obj: Mapping[str, Any]) -> bool:
        if not signer:
            signer.append(Ed25519PublicKey.from_public_bytes(load_signing_public(keys)))
        try:
            check_receipt(obj, signer[0])
        except (ValueError, TypeError):
            return False
        return True

    return signed
