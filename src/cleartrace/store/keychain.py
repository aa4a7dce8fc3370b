"""The OS keychain (the `keyring` package), used only once a probe proves it works.

A keychain is trusted only after a probe really writes, reads back and deletes
a value within `PROBE_TIMEOUT` seconds (headless machines often offer a
backend that fails, silently stores nothing, or blocks on a prompt). Every
call runs on a daemon thread with that timeout, so a keychain waiting on an
unlock prompt nobody sees cannot hang the program or its exit.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from typing import TypeVar

from cleartrace.errors import KeyStorageError
from cleartrace.paths import Paths

__all__ = [
    "PROBE_TIMEOUT",
    "SERVICE",
    "KeychainFailed",
    "delete",
    "entry",
    "get",
    "keyring_works",
    "set_key",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a keychain gets to answer before key files are used instead.
PROBE_TIMEOUT = 5.0
#: The keychain service every entry of every home is stored under.
SERVICE = "cleartrace"


def entry(name: str, paths: Paths) -> str:
    """The keychain entry of key `name` ("master", "device", "master-next") of
    this home: a tag of the home's path keeps two homes' keys apart."""
    return f"{name}:{hashlib.sha256(str(paths.home).encode()).hexdigest()[:16]}"


class KeychainFailed(Exception):
    """The keychain raised or did not answer in time; `str()` says which."""


def _with_timeout(func: Callable[[], _T], timeout: float) -> _T:
    """Run `func` on a daemon thread, waiting at most `timeout` seconds; the
    thread is abandoned after that.

    Raises:
        KeychainFailed: `func` raised, or did not finish in time.
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
        raise KeychainFailed(f"did not answer within {timeout:g} s")
    if error or not result:
        raise KeychainFailed(f"failed ({error[0] if error else 'no answer'})")
    return result[0]


def keyring_works() -> str | None:
    """The keyring backend's name when a write/read/delete probe succeeds."""

    def probe() -> str | None:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
        name = type(backend).__module__ + "." + type(backend).__name__
        if isinstance(backend, fail.Keyring | null.Keyring):
            return None  # "no keychain here", said politely
        user, value = f"probe-{secrets.token_hex(8)}", secrets.token_urlsafe(16)
        keyring.set_password(SERVICE, user, value)
        try:
            ok = keyring.get_password(SERVICE, user) == value
        finally:
            keyring.delete_password(SERVICE, user)
        return name if ok else None

    try:
        return _with_timeout(probe, PROBE_TIMEOUT)
    except KeychainFailed as exc:
        log.warning("the OS keychain %s; using key files", exc)
        return None


def get(user: str) -> bytes | None:
    """The key in entry `user`; None when there is none.

    Raises:
        KeyStorageError: the keychain failed or timed out, or holds a damaged key.
    """
    import keyring

    where = f"the OS keychain (service '{SERVICE}', entry '{user}')"
    try:
        value = _with_timeout(lambda: keyring.get_password(SERVICE, user), PROBE_TIMEOUT)
    except KeychainFailed as exc:
        raise KeyStorageError(f"{where} {exc}; unlock the keychain and try again") from None
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise KeyStorageError(f"{where} holds a damaged key; restore it") from None


def set_key(user: str, raw: bytes) -> None:
    """Store `raw` in entry `user`.

    Raises:
        KeyStorageError: the keychain failed or timed out.
    """
    import keyring

    try:
        _with_timeout(
            lambda: keyring.set_password(SERVICE, user, base64.b64encode(raw).decode()),
            PROBE_TIMEOUT,
        )
    except KeychainFailed as exc:
        raise KeyStorageError(
            f"the OS keychain {exc} while storing a new key; try again, "
            "or set CLEARTRACE_KEYSTORE=file to use key files"
        ) from None


def delete(user: str) -> None:
    """Remove entry `user`.

    Raises:
        KeychainFailed: the keychain failed or timed out (the entry may be gone anyway).
    """
    import keyring

    _with_timeout(lambda: keyring.delete_password(SERVICE, user), PROBE_TIMEOUT)
