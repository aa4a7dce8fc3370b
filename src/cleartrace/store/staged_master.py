"""Master key rotation's key storage: the new key staged beside the current one.

A new master key is first kept beside the current one ("staged": the file
keys/master.key.next, or the keychain entry master-next:<tag>), then the
store is rewrapped to it in one transaction, then it replaces the current
key. Whichever step a crash interrupts, one of the two opens the store.
store/rotation.py drives the order.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from cleartrace.errors import KeyStorageError
from cleartrace.paths import Paths, fsync_dir
from cleartrace.store import keychain
from cleartrace.store.key_files import key_file, read_key_file, write_atomic
from cleartrace.store.keys import Keys

__all__ = ["discard_staged_master", "promote_master", "stage_master", "staged_master"]

_NEXT = "master-next"


def _staged_file(paths: Paths) -> Path:
    return paths.keys_dir / "master.key.next"


def stage_master(paths: Paths, keys: Keys, new: bytes) -> None:
    """Keep `new` beside the current master key, durably, before any use of it.

    Raises:
        KeyStorageError: it could not be written.
    """
    if keys.backend == "keyring":
        keychain.set_key(keychain.entry(_NEXT, paths), new)
    else:
        write_atomic(_staged_file(paths), new)


def staged_master(paths: Paths, keys: Keys) -> bytes | None:
    """The staged master key of an unfinished rotation, or None.

    Raises:
        KeyStorageError: it is unreadable, insecure or damaged.
    """
    if keys.backend == "keyring":
        raw = keychain.get(keychain.entry(_NEXT, paths))
    else:
        raw = read_key_file(_staged_file(paths))
    if raw is not None and len(raw) != 32:
        raise KeyStorageError(f"the staged master key of {paths.home} is damaged; remove it")
    return raw


def promote_master(paths: Paths, keys: Keys, new: bytes) -> Keys:
    """Make the staged `new` the master key, and forget the old one.

    Files: one rename of master.key.next over master.key (the old key is gone
    and the staged one with it, at once). Keychain: the entry is overwritten,
    then the staged entry deleted; a crash between leaves both equal to `new`.

    Raises:
        KeyStorageError: the key storage could not be written.
    """
    if keys.backend == "keyring":
        keychain.set_key(keychain.entry("master", paths), new)
        discard_staged_master(paths, keys)
    else:
        target = key_file(paths, "master")
        try:
            # Only the rotation that staged `new` may put it in place: a staged
            # file holding another key would leave the store under one nobody has.
            staged = read_key_file(_staged_file(paths))
            if staged is not None and staged != new:
                raise KeyStorageError(
                    f"{_staged_file(paths)} holds another rotation's key, not the one "
                    f"{paths.db} was rewrapped to; {target} was left as it is"
                )
            os.replace(_staged_file(paths), target)
            fsync_dir(target.parent)
        except FileNotFoundError:
            # Another process finishing the same interrupted rotation was first.
            if read_key_file(target) != new:
                raise KeyStorageError(
                    f"the staged master key of {paths.home} vanished before it replaced "
                    f"{target}; restore the key files from a backup"
                ) from None
        except OSError as exc:
            raise KeyStorageError(
                f"cannot replace {target}: {exc.strerror}; the new key is in "
                f"{_staged_file(paths)} and is used from there on the next start"
            ) from exc
    return replace(keys, master=new)


def discard_staged_master(paths: Paths, keys: Keys) -> None:
    """Remove the staged key of a rotation that did not commit.

    Raises:
        KeyStorageError: it could not be removed.
    """
    if keys.backend == "keyring":
        user = keychain.entry(_NEXT, paths)
        try:
            keychain.delete(user)
        except keychain.KeychainFailed as exc:
            if keychain.get(user) is not None:
                raise KeyStorageError(
                    f"the OS keychain {exc} while removing entry '{user}'; try again"
                ) from None
        return
    try:
        _staged_file(paths).unlink(missing_ok=True)
        fsync_dir(paths.keys_dir)
    except OSError as exc:
        raise KeyStorageError(
            f"cannot remove {_staged_file(paths)}: {exc.strerror}; remove it by hand"
        ) from exc
