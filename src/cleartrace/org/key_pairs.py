"""Signing keys a service makes for itself on first use: the collector's witness
key (org/witness.py) and the officer side's org-ledger key (org/org_ledger.py).

NAME.key (0600) holds {"type", "ed25519"}; NAME.pub beside it (0644) holds
{"type", "ed25519", "fingerprint"}, to hand to whoever verifies. Read with
`read_private_file`, so a key file of another user's, readable by others or
reached through a symlink is refused rather than used.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import KeyStorageError, UsageError
from cleartrace.formats import b64url, canonical, key_fingerprint, unb64url
from cleartrace.paths import fsync_dir, read_private_file, write_private_bytes

__all__ = ["load_or_create"]

_MAX_KEY_FILE = 64 * 1024


def load_or_create(
    private: Path, public: Path, types: tuple[str, str], what: str
) -> Ed25519PrivateKey:
    """The key in `private`, or a new one written there (and its public half to
    `public`); `types` are the two files' "type", `what` names the key in errors
    ("witness": "the witness key file ...").

    Created without overwriting: of processes creating it at once, one's key is
    written and every one of them returns that key.

    Raises:
        KeyStorageError: the key file is damaged, or refused by `read_private_file`.
        UsageError: it cannot be created there.
        DiskFull: no room to create it.
    """
    private_type, public_type = types
    raw = read_private_file(private, f"{what} key file", _MAX_KEY_FILE)
    if raw is None:
        key = Ed25519PrivateKey.generate()
        doc = {"type": private_type, "ed25519": b64url(key.private_bytes_raw())}
        _create(private, json.dumps(doc).encode("utf-8"), what)
        # Another process may have created it first: its key is the one.
        raw = read_private_file(private, f"{what} key file", _MAX_KEY_FILE)
        if raw is None:
            raise KeyStorageError(f"{private} vanished as it was created; start again")
        key = _parse(raw, private, private_type)
        half = key.public_key().public_bytes_raw()
        pub = {"type": public_type, "ed25519": b64url(half), "fingerprint": key_fingerprint(half)}
        write_private_bytes(public, canonical(pub) + b"\n", f"{what} public key")
        public.chmod(0o644)
        return key
    return _parse(raw, private, private_type)


def _create(path: Path, data: bytes, what: str) -> None:
    """Make `path` hold `data`, unless it exists by then: written whole to a file of
    this process's own, synced, then hard-linked to `path`, which never replaces a
    file (a rename would: two processes starting at once would each sign with
    their own key, and one key would be lost).

    Raises:
        UsageError, DiskFull: the file cannot be written.
    """
    _remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    write_private_bytes(tmp, data, f"{what} key")
    try:
        os.link(tmp, path)
        fsync_dir(path.parent)  # the new entry lives in the directory's data
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(
            f"cannot create the {what} key {path}: {exc.strerror}; choose a directory "
            "on a file system you can write to"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _remove_leftovers(path: Path) -> None:
    """Remove the temporaries of creations of `path` whose process is gone: a
    creation killed before its `finally` leaves a private key nobody will use.
    Those of a process still running (another creation under way, here) are left."""
    for tmp in path.parent.glob(f".{path.name}.*.new"):
        pid = tmp.name.removeprefix(f".{path.name}.").partition(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether a process `pid` exists on this host (one of another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(raw: bytes, private: Path, private_type: str) -> Ed25519PrivateKey:
    """The key in a key file's bytes.

    Raises:
        KeyStorageError: the file is damaged.
    """
    try:
        obj = json.loads(raw.decode("utf-8"))
        if obj.get("type") != private_type:
            raise ValueError("type")
        return Ed25519PrivateKey.from_private_bytes(unb64url(obj["ed25519"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyStorageError(f"{private} is damaged; restore it from a backup") from None
