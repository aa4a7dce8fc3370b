"""The master key and the device signing key: OS keychain first, else 0600 files.

The keychain (store/keychain.py) is used only when a probe proves it works;
else key files (store/key_files.py). Which storage holds a home's keys is
recorded in `keystore.json` (no key material), so an existing store never
gets a silently new key. See docs/adr/0003.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import KeyStorageError
from cleartrace.formats import key_fingerprint
from cleartrace.paths import Paths
from cleartrace.store import keychain
from cleartrace.store.key_files import key_file, read_key_file, write_atomic

__all__ = ["Keys", "describe_keystore", "device_fingerprint", "load_keys"]

_NAMES = ("master", "device")


@dataclass(frozen=True)
class Keys:
    """This home's keys and where they are kept.

    `master` wraps every session key; `device` signs the consent ledger.
    `backend` is "keyring" or "file"; `location` says where, for humans
    (`cleartrace status`, error messages). The keys stay out of `repr()`, so a
    traceback or a log line never shows them.
    """

    master: bytes = field(repr=False)
    device: Ed25519PrivateKey = field(repr=False)
    backend: str
    location: str


def device_fingerprint(public_key: Ed25519PublicKey) -> str:
    """'sha256:' + hex SHA-256 of the raw 32-byte public key (see `key_fingerprint`)."""
    return key_fingerprint(public_key.public_bytes_raw())


def _read_marker(paths: Paths) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(paths.keystore_marker.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise KeyStorageError(
            f"{paths.keystore_marker} is damaged; restore it (it records where the keys are)"
        ) from exc
    return data


def _location(paths: Paths, backend: str, keyring_name: str | None = None) -> str:
    if backend == "keyring":
        return (
            f"OS keychain ({keyring_name}), service '{keychain.SERVICE}', "
            f"entries {keychain.entry('master', paths)} and {keychain.entry('device', paths)}"
        )
    return f"key files {key_file(paths, 'master')} and {key_file(paths, 'device')}"


def describe_keystore(paths: Paths) -> dict[str, str] | None:
    """Which storage holds this home's keys, without touching them."""
    marker = _read_marker(paths)
    if marker is None:
        return None
    backend = str(marker.get("backend"))
    return {"backend": backend, "location": _location(paths, backend, marker.get("keyring"))}


def _choose_backend() -> tuple[str, str | None]:
    forced = os.environ.get("CLEARTRACE_KEYSTORE")
    if forced == "file":
        return "file", None
    name = keychain.keyring_works()
    if forced == "keyring" and name is None:
        raise KeyStorageError("CLEARTRACE_KEYSTORE=keyring but no working OS keychain was found")
    return ("keyring", name) if name else ("file", None)


def load_keys(paths: Paths, *, create: bool) -> Keys:
    """Load this home's keys; with `create`, set them up on first use.

    Raises:
        KeyStorageError: nothing set up yet (and not `create`), a key missing
            from where the marker says it is, or an insecure key file.
    """
    marker = _read_marker(paths)
    if marker is None:
        if not create:
            raise KeyStorageError(
                f"ClearTrace is not set up in {paths.home} yet; "
                "start with 'cleartrace consent give ...'"
            )
        if paths.db.exists():
            raise KeyStorageError(
                f"{paths.db} exists but {paths.keystore_marker} (where its keys are) is missing; "
                "restore it rather than creating new keys that cannot open the store"
            )
        backend, keyring_name = _choose_backend()
        for name in _NAMES:
            fresh = secrets.token_bytes(32)
            if backend == "keyring":
                keychain.set_key(keychain.entry(name, paths), fresh)
            else:
                write_atomic(key_file(paths, name), fresh)
        marker = {"v": 1, "backend": backend, "keyring": keyring_name}
        # Written last: a crash before this leaves no marker and so no store
        # that depends on keys which were never fully kept.
        write_atomic(paths.keystore_marker, json.dumps(marker).encode())
    backend = str(marker.get("backend"))
    loaded: dict[str, bytes] = {}
    for name in _NAMES:
        raw: bytes | None
        if backend == "keyring":
            user = keychain.entry(name, paths)
            raw = keychain.get(user)
            where = f"the OS keychain, service '{keychain.SERVICE}', entry '{user}'"
        elif backend == "file":
            raw = read_key_file(key_file(paths, name))
            where = str(key_file(paths, name))
        else:
            raise KeyStorageError(f"{paths.keystore_marker} names an unknown key storage")
        if raw is None:
            raise KeyStorageError(
                f"the {name} key of {paths.home} is missing from {where}; restore it "
                "(a new key could not open the existing store)"
            )
        if len(raw) != 32:
            raise KeyStorageError(
                f"the {name} key in {where} is damaged (not 32 bytes); restore it"
            )
        loaded[name] = raw
    return Keys(
        master=loaded["master"],
        device=Ed25519PrivateKey.from_private_bytes(loaded["device"]),
        backend=backend,
        location=_location(paths, backend, marker.get("keyring")),
    )
