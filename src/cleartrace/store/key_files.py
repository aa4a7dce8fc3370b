"""Keys in 0600 files under the home's keys directory, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from cleartrace.errors import KeyStorageError
from cleartrace.formats import key_fingerprint
from cleartrace.paths import Paths, fsync_dir, private_file, read_private_file

__all__ = [
    "key_file",
    "read_device_public",
    "read_key_file",
    "save_device_public",
    "write_atomic",
]


def key_file(paths: Paths, name: str) -> Path:
    return paths.keys_dir / f"{name}.key"


def read_key_file(path: Path) -> bytes | None:
    """A key file's 32 bytes; None when absent.

    Raises:
        KeyStorageError: see `read_private_file`, or not 32 bytes.
    """
    raw = read_private_file(path, "key file", 32)
    if raw is not None and len(raw) != 32:
        raise KeyStorageError(f"key file {path} is damaged (not 32 bytes); restore it")
    return raw


def write_atomic(path: Path, raw: bytes) -> None:
    """Write a 0600 file so that a crash leaves the old content or the new, whole.

    Raises:
        KeyStorageError: the file could not be written (the message names it).
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = private_file(tmp)  # O_NOFOLLOW: a planted symlink is refused
        try:
            os.write(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise KeyStorageError(
            f"cannot write {path}: {exc.strerror}; check that {path.parent} is yours and writable"
        ) from exc


def _device_public_file(paths: Paths) -> Path:
    return paths.home / "device.pub"


def save_device_public(paths: Paths, raw: bytes) -> None:
    """Keep the device's public key (32 raw bytes, no secret) beside the store,
    so `cleartrace status` names the device fingerprint without opening a key.

    Raises:
        KeyStorageError: the file could not be written.
    """
    path = _device_public_file(paths)
    try:
        if read_private_file(path, "device public key", 32) == raw:
            return
    except KeyStorageError:
        pass  # a damaged copy is replaced by the key's own
    write_atomic(path, raw)


def read_device_public(paths: Paths) -> str | None:
    """The device fingerprint (``sha256:...``) from the saved public key; None
    before a home was first opened, or when the file is unreadable (the next
    opening of the home writes it again)."""
    try:
        raw = read_private_file(_device_public_file(paths), "device public key", 32)
    except KeyStorageError:
        return None
    return None if raw is None or len(raw) != 32 else key_fingerprint(raw)
