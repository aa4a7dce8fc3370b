"""The master key and the device signing key: OS keychain first, else 0600 files.

A keychain is trusted only after a probe really writes, reads back and deletes
a value within `PROBE_TIMEOUT` seconds (headless machines often offer a
backend that fails, silently stores nothing, or blocks on a prompt). Which
storage holds a home's keys is recorded in `keystore.json` (no key material),
so an existing store never gets a silently new key. See docs/adr/0003.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import KeyStorageError
from cleartrace.formats import key_fingerprint
from cleartrace.paths import Paths, private_file, read_private_file

__all__ = [
    "PROBE_TIMEOUT",
    "Keys",
    "describe_keystore",
    "device_fingerprint",
    "discard_staged_master",
    "load_keys",
    "promote_master",
    "stage_master",
    "staged_master",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a keychain gets to answer before key files are used instead.
PROBE_TIMEOUT = 5.0
_SERVICE = "cleartrace"
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


def _home_tag(paths: Paths) -> str:
    return hashlib.sha256(str(paths.home).encode()).hexdigest()[:16]


# -- keyring --------------------------------------------------------------------


class _KeychainFailed(Exception):
    """The keychain raised or did not answer in time; `str()` says which."""


def _with_timeout(func: Callable[[], _T], timeout: float) -> _T:
    """Run `func` on a daemon thread, waiting at most `timeout` seconds.

    A keychain can block forever on an unlock prompt nobody sees; the daemon
    thread is abandoned then, so it cannot hang the app or its exit.

    Raises:
        _KeychainFailed: `func` raised, or did not finish in time.
    """
    result: list[_T] = []
    error: list[str] = []

    def run() -> None:
        try:
            result.append(func())
        except Exception as exc:  # any keyring failure means "do not use it"
            error.append(type(exc).__name__)

    worker = threading.Thread(target=run, name="cleartrace-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _KeychainFailed(f"did not answer within {timeout:g} s")
    if error or not result:
        raise _KeychainFailed(f"failed ({error[0] if error else 'no answer'})")
    return result[0]


def _keyring_works() -> str | None:
    """The keyring backend's name when a write/read/delete probe succeeds."""

    def probe() -> str | None:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
        name = type(backend).__module__ + "." + type(backend).__name__
        if isinstance(backend, fail.Keyring | null.Keyring):
            return None  # "no keychain here", said politely
        user, value = f"probe-{secrets.token_hex(8)}", secrets.token_urlsafe(16)
        keyring.set_password(_SERVICE, user, value)
        try:
            ok = keyring.get_password(_SERVICE, user) == value
        finally:
            keyring.delete_password(_SERVICE, user)
        return name if ok else None

    try:
        return _with_timeout(probe, PROBE_TIMEOUT)
    except _KeychainFailed as exc:
        log.warning("the OS keychain %s; using key files", exc)
        return None


def _keyring_get(user: str) -> bytes | None:
    import keyring

    where = f"the OS keychain (service '{_SERVICE}', entry '{user}')"
    try:
        value = _with_timeout(lambda: keyring.get_password(_SERVICE, user), PROBE_TIMEOUT)
    except _KeychainFailed as exc:
        raise KeyStorageError(f"{where} {exc}; unlock the keychain and try again") from None
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise KeyStorageError(f"{where} holds a damaged key; restore it") from None


def _keyring_set(user: str, raw: bytes) -> None:
    import keyring

    try:
        _with_timeout(
            lambda: keyring.set_password(_SERVICE, user, base64.b64encode(raw).decode()),
            PROBE_TIMEOUT,
        )
    except _KeychainFailed as exc:
        raise KeyStorageError(
            f"the OS keychain {exc} while storing a new key; try again, "
            "or set CLEARTRACE_KEYSTORE=file to use key files"
        ) from None


# -- key files --------------------------------------------------------------------


def _key_file(paths: Paths, name: str) -> Path:
    return paths.keys_dir / f"{name}.key"


def _read_key_file(path: Path) -> bytes | None:
    """A key file's 32 bytes; None when absent.

    Raises:
        KeyStorageError: see `read_private_file`, or not 32 bytes.
    """
    raw = read_private_file(path, "key file", 32)
    if raw is not None and len(raw) != 32:
        raise KeyStorageError(f"key file {path} is damaged (not 32 bytes); restore it")
    return raw


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` survive a power loss (the entry is its data)."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_atomic(path: Path, raw: bytes) -> None:
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
        _fsync_dir(path.parent)
    except OSError as exc:
        raise KeyStorageError(
            f"cannot write {path}: {exc.strerror}; check that {path.parent} is yours and writable"
        ) from exc


# -- the marker and the public API -------------------------------------------------


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
            f"OS keychain ({keyring_name}), service '{_SERVICE}', "
            f"entries master:{_home_tag(paths)} and device:{_home_tag(paths)}"
        )
    return f"key files {_key_file(paths, 'master')} and {_key_file(paths, 'device')}"


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
    name = _keyring_works()
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
                _keyring_set(f"{name}:{_home_tag(paths)}", fresh)
            else:
                _write_atomic(_key_file(paths, name), fresh)
        marker = {"v": 1, "backend": backend, "keyring": keyring_name}
        # Written last: a crash before this leaves no marker and so no store
        # that depends on keys which were never fully kept.
        _write_atomic(paths.keystore_marker, json.dumps(marker).encode())
    backend = str(marker.get("backend"))
    loaded: dict[str, bytes] = {}
    for name in _NAMES:
        raw: bytes | None
        if backend == "keyring":
            user = f"{name}:{_home_tag(paths)}"
            raw = _keyring_get(user)
            where = f"the OS keychain, service '{_SERVICE}', entry '{user}'"
        elif backend == "file":
            raw = _read_key_file(_key_file(paths, name))
            where = str(_key_file(paths, name))
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


# -- master key rotation (store/rotation.py drives the order) -----------------------
#
# A new master key is first kept beside the current one ("staged": the file
# keys/master.key.next, or the keychain entry master-next:<tag>), then the
# store is rewrapped to it in one transaction, then it replaces the current
# key. Whichever step a crash interrupts, one of the two opens the store.

_NEXT = "master-next"


def _staged_file(paths: Paths) -> Path:
    return paths.keys_dir / "master.key.next"


def stage_master(paths: Paths, keys: Keys, new: bytes) -> None:
    """Keep `new` beside the current master key, durably, before any use of it.

    Raises:
        KeyStorageError: it could not be written.
    """
    if keys.backend == "keyring":
        _keyring_set(f"{_NEXT}:{_home_tag(paths)}", new)
    else:
        _write_atomic(_staged_file(paths), new)


def staged_master(paths: Paths, keys: Keys) -> bytes | None:
    """The staged master key of an unfinished rotation, or None.

    Raises:
        KeyStorageError: it is unreadable, insecure or damaged.
    """
    if keys.backend == "keyring":
        raw = _keyring_get(f"{_NEXT}:{_home_tag(paths)}")
    else:
        raw = _read_key_file(_staged_file(paths))
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
        _keyring_set(f"master:{_home_tag(paths)}", new)
        discard_staged_master(paths, keys)
    else:
        target = _key_file(paths, "master")
        try:
            # Only the rotation that staged `new` may put it in place: a staged
            # file holding another key would leave the store under one nobody has.
            staged = _read_key_file(_staged_file(paths))
            if staged is not None and staged != new:
                raise KeyStorageError(
                    f"{_staged_file(paths)} holds another rotation's key, not the one "
                    f"{paths.db} was rewrapped to; {target} was left as it is"
                )
            os.replace(_staged_file(paths), target)
            _fsync_dir(target.parent)
        except FileNotFoundError:
            # Another process finishing the same interrupted rotation was first.
            if _read_key_file(target) != new:
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
        import keyring

        user = f"{_NEXT}:{_home_tag(paths)}"
        try:
            _with_timeout(lambda: keyring.delete_password(_SERVICE, user), PROBE_TIMEOUT)
        except _KeychainFailed as exc:
            if _keyring_get(user) is not None:
                raise KeyStorageError(
                    f"the OS keychain {exc} while removing entry '{user}'; try again"
                ) from None
        return
    try:
        _staged_file(paths).unlink(missing_ok=True)
        _fsync_dir(paths.keys_dir)
    except OSError as exc:
        raise KeyStorageError(
            f"cannot remove {_staged_file(paths)}: {exc.strerror}; remove it by hand"
        ) from exc
