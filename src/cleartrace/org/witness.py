"""The collector's witness key: it signs every head file it writes.

A witnessed head (heads/<device>.json) says how far a device's ledger had
reached when the collector accepted its bundle; ingest refuses a ledger that
ends before it. Unsigned, anyone who can write the store could lower a head
together with deleting a device's last bundles (and the withdrawal they
carried). Signed by a key only the collector holds, and checked by ingest
with `--witness-key`, a head cannot be forged, and a device with bundles
but no head is refused. An older head, genuinely signed, put back in its
place is caught by the witness counter every head carries (org/heads.py).

DATA/witness.key (0600) holds the private key, DATA/witness.pub the public
one to give to whoever runs ingest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import KeyStorageError
from cleartrace.formats import (
    canonical,
    key_fingerprint,
    sign_canonical,
    unb64url,
    verify_ed25519,
)
from cleartrace.org.key_pairs import load_or_create as load_or_create_key

__all__ = [
    "DEFAULT_RECHECK_HEADS",
    "HEAD_VERSION",
    "WITNESS_KEY",
    "WITNESS_PUB",
    "load_or_create",
    "load_public",
    "sign_head",
    "verify_head",
]

WITNESS_KEY, WITNESS_PUB = "witness.key", "witness.pub"
#: The head file format (docs/bundle-format.md); files without "v" are version 1,
#: written before heads carried the witness counter.
HEAD_VERSION = 2
#: Seconds between two passes of a running collector over its head files, each
#: rewriting those that differ from the registry (an older one put back).
DEFAULT_RECHECK_HEADS = 300.0
_PRIVATE_TYPE = "cleartrace-witness-key"
_PUBLIC_TYPE = "cleartrace-witness-public-key"


def load_or_create(data: Path) -> Ed25519PrivateKey:
    """The collector's witness key in `data`, created (0600) on first use.

    Raises:
        KeyStorageError: the key file is damaged, or refused by
            `read_private_file` (another user's, readable by others, a symlink).
    """
    return load_or_create_key(
        data / WITNESS_KEY, data / WITNESS_PUB, (_PRIVATE_TYPE, _PUBLIC_TYPE), "witness"
    )


def load_public(path: Path) -> Ed25519PublicKey:
    """The witness public key from `witness.pub` (or a directory holding it).

    Raises:
        KeyStorageError: missing, damaged, or its fingerprint does not match.
    """
    if path.is_dir():
        path = path / WITNESS_PUB
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        raw = unb64url(obj["ed25519"])
        key = Ed25519PublicKey.from_public_bytes(raw)
        ok = obj.get("type") == _PUBLIC_TYPE and obj.get("fingerprint") == key_fingerprint(raw)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise KeyStorageError(
            f"{path} is not a collector's witness.pub; copy it from the collector's data directory"
        )
    return key


def sign_head(doc: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The head file's bytes: `doc` plus "sig", Ed25519 over the canonical `doc`."""
    return canonical({**doc, "sig": sign_canonical(key, doc)})


def verify_head(obj: Mapping[str, Any], key: Ed25519PublicKey) -> None:
    """Check a head file's signature.

    Raises:
        ValueError: unsigned, or the signature does not verify (forged or changed).
    """
    sig = obj.get("sig")
    if not isinstance(sig, str):
        raise ValueError("the head is not signed")
    # Fixed messages: the file is unverified text, none of it goes into them.
    try:
        signature = unb64url(sig)
        unsigned = canonical({k: v for k, v in obj.items() if k != "sig"})
    except (ValueError, TypeError):
        raise ValueError("the head's signature does not verify") from None
    if not verify_ed25519(key, signature, unsigned):
        raise ValueError("the head's signature does not verify")
