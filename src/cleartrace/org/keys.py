"""The organisation's keys: the HPKE key pair bundles are sealed to, and the
Ed25519 key that signs policies.

`cleartrace org keygen --out KEYS` writes four JSON files; the private ones
0600 and never printed::

    bundle.key   {"type", "suite", "x25519", "mlkem768_seed" (hybrid only)}
    bundle.pub   OrgPublicKey.as_json(): what a policy carries as `org_key`
    sign.key     {"type", "ed25519"}
    sign.pub     {"type", "ed25519", "fingerprint"}
    officer.key  {"type", "ed25519"}
    officer.pub  {"type", "ed25519", "fingerprint"}

The officer key signs audit reports (org/report_signing.py). It is a key of
its own so that the privacy officer can hold it without the keys that open
bundles or sign policies; `generate_officer` adds it to a directory made
before it existed (`org keygen --officer-only`), or makes an officer-only one.

ML-KEM keys are stored as their 64-byte seed (FIPS 203's compact private
form), from which the full key is derived again on load.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import KeyStorageError, UsageError
from cleartrace.formats import b64url, key_fingerprint, unb64url
from cleartrace.paths import read_private_file, write_private, write_private_bytes
from cleartrace.suites import DEFAULT_SUITE, HYBRID, SUITES, OrgPublicKey

__all__ = [
    "BUNDLE_KEY",
    "BUNDLE_PUB",
    "OFFICER_KEY",
    "OFFICER_PUB",
    "SIGN_KEY",
    "SIGN_PUB",
    "BundleKeys",
    "OrgKeys",
    "PrivateHpkeKey",
    "generate",
    "generate_officer",
    "load_bundle_keys",
    "load_officer_key",
    "load_officer_public",
    "load_private",
    "load_signing_public",
    "new_pair",
]

BUNDLE_KEY, BUNDLE_PUB, SIGN_KEY, SIGN_PUB = "bundle.key", "bundle.pub", "sign.key", "sign.pub"
_BUNDLE_PRIVATE_TYPE = "cleartrace-org-bundle-private-key"
_SIGN_PRIVATE_TYPE = "cleartrace-org-signing-private-key"
_SIGN_PUBLIC_TYPE = "cleartrace-org-signing-public-key"
OFFICER_KEY, OFFICER_PUB = "officer.key", "officer.pub"
_OFFICER_PRIVATE_TYPE = "cleartrace-org-officer-private-key"
_OFFICER_PUBLIC_TYPE = "cleartrace-org-officer-public-key"
_MAX_KEY_FILE = 64 * 1024

PrivateHpkeKey = hpke.MLKEM768X25519PrivateKey | x25519.X25519PrivateKey


@dataclass(frozen=True)
class OrgKeys:
    """An organisation's private keys (kept out of `repr()`) and their public halves."""

    bundle_private: PrivateHpkeKey = field(repr=False)
    bundle_public: OrgPublicKey
    signing_private: Ed25519PrivateKey = field(repr=False)

    @property
    def signing_public(self) -> Ed25519PublicKey:
        return self.signing_private.public_key()


@dataclass(frozen=True)
class BundleKeys:
    """The key pair bundles are sealed to: all that ingest needs, so the
    policy-signing key can stay on another (offline) machine."""

    bundle_private: PrivateHpkeKey = field(repr=False)
    bundle_public: OrgPublicKey


def _bundle_key_json(
    suite: str, x_key: x25519.X25519PrivateKey, seed: bytes | None
) -> dict[str, Any]:
    obj = {
        "type": _BUNDLE_PRIVATE_TYPE,
        "suite": suite,
        "x25519": b64url(x_key.private_bytes_raw()),
    }
    if seed is not None:
        obj["mlkem768_seed"] = b64url(seed)
    return obj


def generate(out: Path, suite: str = DEFAULT_SUITE) -> OrgKeys:
    """Create a new key set in the directory `out` (created 0700 if absent).

    Raises:
        UsageError: an unknown suite, or `out` already holds keys (they are
            never overwritten: bundles sealed to them would become unreadable).
        DiskFull: no room for the files.
    """
    if suite not in SUITES:
        raise UsageError(f"unknown suite '{suite}'; use one of {', '.join(SUITES)}")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = (BUNDLE_KEY, BUNDLE_PUB, SIGN_KEY, SIGN_PUB, OFFICER_KEY, OFFICER_PUB)
    existing = [n for n in names if (out / n).exists()]
    if existing:
        raise UsageError(
            f"{out} already holds organisation keys ({', '.join(existing)}); they are never "
            "overwritten — choose an empty directory"
        )
    x_key = x25519.X25519PrivateKey.generate()
    m_key = mlkem.MLKEM768PrivateKey.generate() if suite == HYBRID else None
    seed = m_key.private_bytes_raw() if m_key is not None else None
    signing = Ed25519PrivateKey.generate()
    pair = _pair(x_key, m_key)
    keys = OrgKeys(
        bundle_private=pair.bundle_private,
        bundle_public=pair.bundle_public,
        signing_private=signing,
    )
    _write_json(out / BUNDLE_KEY, _bundle_key_json(suite, x_key, seed), private=True)
    _write_json(out / BUNDLE_PUB, keys.bundle_public.as_json(), private=False)
    _write_json(
        out / SIGN_KEY,
        {"type": _SIGN_PRIVATE_TYPE, "ed25519": b64url(signing.private_bytes_raw())},
        private=True,
    )
    _write_json(out / SIGN_PUB, _signing_public_json(signing.public_key()), private=False)
    generate_officer(out)
    return keys


def generate_officer(out: Path) -> Ed25519PublicKey:
    """Write a new officer key pair (officer.key 0600, officer.pub) into `out`,
    created 0700 if absent; returns the public key.

    Raises:
        UsageError: `out` already holds an officer key (never overwritten:
            reports signed with it would no longer be attributable).
        DiskFull: no room for the files.
    """
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = [
        n for n in (OFFICER_KEY, OFFICER_PUB) if (out / n).exists() or (out / n).is_symlink()
    ]
    if existing:
        raise UsageError(
            f"{out} already holds an officer key ({', '.join(existing)}); it is never "
            "overwritten — keep it, or choose another directory"
        )
    key = Ed25519PrivateKey.generate()
    _write_json(
        out / OFFICER_KEY,
        {"type": _OFFICER_PRIVATE_TYPE, "ed25519": b64url(key.private_bytes_raw())},
        private=True,
    )
    public = key.public_key()
    _write_json(
        out / OFFICER_PUB, _signing_public_json(public, _OFFICER_PUBLIC_TYPE), private=False
    )
    return public


def load_officer_key(keys_dir: Path) -> Ed25519PrivateKey:
    """The officer's private key from `keys_dir/officer.key`.

    Raises:
        KeyStorageError: missing, damaged, not a key, a symlink, or readable by others.
    """
    obj = _read_json(keys_dir / OFFICER_KEY)
    try:
        if obj.get("type") != _OFFICER_PRIVATE_TYPE:
            raise ValueError("type")
        return Ed25519PrivateKey.from_private_bytes(unb64url(obj["ed25519"]))
    except (KeyError, ValueError, TypeError):
        raise KeyStorageError(
            f"the officer key in {keys_dir} is damaged or not a key; restore it, or make one "
            "with 'cleartrace org keygen --officer-only --out KEYS'"
        ) from None


def load_officer_public(path: Path) -> Ed25519PublicKey:
    """The officer's public key from `officer.pub` (or a directory holding it),
    read without following a symlink.

    Raises:
        KeyStorageError: missing, a symlink, damaged, or its fingerprint does not match.
    """
    if path.is_dir() and not path.is_symlink():
        path = path / OFFICER_PUB
    return Ed25519PublicKey.from_public_bytes(
        _ed25519_public(
            path,
            _OFFICER_PUBLIC_TYPE,
            f"{path} is not an officer.pub; copy it from the key directory 'cleartrace org "
            "keygen' wrote",
        )
    )


def load_signing_public(keys_dir: Path) -> bytes:
    """The raw public key in KEYS/sign.pub: the key the organisation's policies are
    signed with, so that `org audit --policy` can tell its own policy from another's.

    Raises:
        KeyStorageError: missing, a symlink, damaged, or its fingerprint does not match.
    """
    path = keys_dir / SIGN_PUB
    return _ed25519_public(
        path,
        _SIGN_PUBLIC_TYPE,
        f"{path} is not a sign.pub; restore it from the key directory 'cleartrace org "
        "keygen' wrote",
    )


def _ed25519_public(path: Path, kind: str, refusal: str) -> bytes:
    """The raw Ed25519 key of a public key file of type `kind`, whose fingerprint
    must match the key.

    Raises:
        KeyStorageError: missing, a symlink, damaged or mismatched (`refusal` says so).
    """
    raw = _read_public(path)
    try:
        obj = json.loads(raw.decode("utf-8"))
        public = unb64url(obj["ed25519"])
        Ed25519PublicKey.from_public_bytes(public)
        ok = obj.get("type") == kind and obj.get("fingerprint") == key_fingerprint(public)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise KeyStorageError(refusal)
    return bytes(public)


def _read_public(path: Path) -> bytes:
    """A public key file's bytes, opened with O_NOFOLLOW (a planted symlink
    could otherwise name another key) and bounded in size.

    Raises:
        KeyStorageError: missing, a symlink, unreadable or too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyStorageError(
                f"{path} is a symbolic link; refusing to use it (put the key file itself there)"
            ) from None
        raise KeyStorageError(f"cannot read {path}: {exc.strerror}; give an officer.pub") from None
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(_MAX_KEY_FILE + 1)
    if len(raw) > _MAX_KEY_FILE:
        raise KeyStorageError(f"{path} is too large to be a key; give an officer.pub")
    return raw


def _signing_public_json(key: Ed25519PublicKey, kind: str = _SIGN_PUBLIC_TYPE) -> dict[str, Any]:
    return {
        "type": kind,
        "ed25519": b64url(key.public_bytes_raw()),
        "fingerprint": key_fingerprint(key.public_bytes_raw()),
    }


def _pair(x_key: x25519.X25519PrivateKey, m_key: mlkem.MLKEM768PrivateKey | None) -> BundleKeys:
    """The bundle key pair: hybrid with an ML-KEM key, X25519 alone without."""
    public = OrgPublicKey.from_keys(
        x_key.public_key(), m_key.public_key() if m_key is not None else None
    )
    private: PrivateHpkeKey = (
        hpke.MLKEM768X25519PrivateKey(m_key, x_key) if m_key is not None else x_key
    )
    return BundleKeys(bundle_private=private, bundle_public=public)


def new_pair(suite: str = DEFAULT_SUITE) -> BundleKeys:
    """A fresh bundle-type key pair held in memory only, never written: for
    what must be sealed for one process's eyes for a while (a Ray ingest run's
    task results, org/ray_results.py)."""
    m_key = mlkem.MLKEM768PrivateKey.generate() if suite == HYBRID else None
    return _pair(x25519.X25519PrivateKey.generate(), m_key)


def _write_json(path: Path, obj: dict[str, Any], *, private: bool) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    if private:
        with write_private(path, "organisation key") as fh:
            fh.write(text)
    else:
        write_private_bytes(path, text.encode(), "organisation public key")
        os.chmod(path, 0o644)


def _read_json(path: Path) -> dict[str, Any]:
    """A private key file written by `generate`, as JSON.

    Raises:
        KeyStorageError: missing, damaged, or refused by `read_private_file`.
    """
    raw = read_private_file(path, "organisation key file", _MAX_KEY_FILE)
    if raw is None:
        raise KeyStorageError(
            f"{path} does not exist; give the directory written by 'cleartrace org keygen'"
        )
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyStorageError(f"cannot read {path} ({type(exc).__name__}); restore it") from None
    if not isinstance(obj, dict):
        raise KeyStorageError(f"{path} is not a key file; restore it")
    return obj


def load_bundle_keys(keys_dir: Path) -> BundleKeys:
    """Load `bundle.key` alone.

    Raises:
        KeyStorageError: missing, damaged, not a key, or readable by others.
    """
    bundle = _read_json(keys_dir / BUNDLE_KEY)
    try:
        if bundle.get("type") != _BUNDLE_PRIVATE_TYPE or bundle.get("suite") not in SUITES:
            raise ValueError("type")
        x_key = x25519.X25519PrivateKey.from_private_bytes(unb64url(bundle["x25519"]))
        m_key = (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(unb64url(bundle["mlkem768_seed"]))
            if bundle["suite"] == HYBRID
            else None
        )
    except (KeyError, ValueError, TypeError):
        raise KeyStorageError(
            f"the bundle key in {keys_dir} is damaged or not a key; restore it"
        ) from None
    return _pair(x_key, m_key)


def load_private(keys_dir: Path) -> OrgKeys:
    """Load the private keys written by `generate`.

    Raises:
        KeyStorageError: a file is missing, damaged, not a key, or readable by others.
    """
    bundle = load_bundle_keys(keys_dir)
    sign = _read_json(keys_dir / SIGN_KEY)
    try:
        if sign.get("type") != _SIGN_PRIVATE_TYPE:
            raise ValueError("type")
        signing = Ed25519PrivateKey.from_private_bytes(unb64url(sign["ed25519"]))
    except (KeyError, ValueError, TypeError):
        raise KeyStorageError(
            f"the signing key in {keys_dir} is damaged or not a key; restore it"
        ) from None
    return OrgKeys(
        bundle_private=bundle.bundle_private,
        bundle_public=bundle.bundle_public,
        signing_private=signing,
    )
