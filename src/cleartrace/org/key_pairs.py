"""Signing keys a service makes for itself on first use: the collector's witness
key (org/witness.py) and the officer side's org-ledger key (org/org_ledger.py).

NAME.key (0600) holds {"type", "ed25519"}; NAME.pub beside it (0644) holds
{"type", "ed25519", "fingerprint"}, to hand to whoever verifies. Read with
`read_private_file`, so a key file of another user's, readable by others or
reached through a symlink is refused rather than used.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import KeyStorageError
from cleartrace.formats import b64url, canonical, key_fingerprint, unb64url
from cleartrace.paths import read_private_file, write_private, write_private_bytes

__all__ = ["load_or_create"]

_MAX_KEY_FILE = 64 * 1024


def load_or_create(
    private: Path, public: Path, types: tuple[str, str], what: str
) -> Ed25519PrivateKey:
    """The key in `private`, or a new one written there (and its public half to
    `public`); `types` are the two files' "type", `what` names the key in errors
    ("witness": "the witness key file ...").

    Raises:
        KeyStorageError: the key file is damaged, or refused by `read_private_file`.
        DiskFull: no room to create it.
    """
    private_type, public_type = types
    raw = read_private_file(private, f"{what} key file", _MAX_KEY_FILE)
    if raw is None:
        key = Ed25519PrivateKey.generate()
        with write_private(private, f"{what} key") as fh:
            json.dump({"type": private_type, "ed25519": b64url(key.private_bytes_raw())}, fh)
        half = key.public_key().public_bytes_raw()
        doc = {"type": public_type, "ed25519": b64url(half), "fingerprint": key_fingerprint(half)}
        write_private_bytes(public, canonical(doc) + b"\n", f"{what} public key")
        public.chmod(0o644)
        return key
    try:
        obj = json.loads(raw.decode("utf-8"))
        if obj.get("type") != private_type:
            raise ValueError("type")
        return Ed25519PrivateKey.from_private_bytes(unb64url(obj["ed25519"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyStorageError(f"{private} is damaged; restore it from a backup") from None
