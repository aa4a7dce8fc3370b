"""The collector's state behind one interface, with two backends.

What a collector keeps — enrolment tokens, devices and their witnessed heads,
the witness counter, the index of accepted bundles, its signed org ledger,
and the rate limits' token buckets — lives either in
DATA/collector.db (SQLite, org/registry.py: the embedded default, needing no
server, for one collector process) or in a
PostgreSQL database (org/registry_pg.py, `--state postgresql://…`), which any
number of collector processes on any hosts share. Everything above this
interface (the HTTP side, the head witness, the commands) is the same for both.

The one thing that differs in kind is the per-device head lock: with SQLite
one process serves the data (DATA/collector.lock sees to it), so a lock in
memory is enough; with PostgreSQL the lock is the database's, so two
processes moving one device's head, and writing its head file, take turns.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import UsageError
from cleartrace.org.devices import Device, Head, StoredBundle
from cleartrace.org.limits import Rate

__all__ = ["CollectorState", "is_shared", "open_state", "redacted"]

_SCHEMES = ("postgresql://", "postgres://")


class CollectorState(Protocol):
    """Tokens, devices, heads, accepted bundles and the org ledger of one collector fleet."""

    #: Whether several collector processes may serve this state at once.
    shared: bool

    def close(self) -> None: ...

    def org_ledger(self) -> list[dict[str, Any]]:
        """The collector's org ledger, every record in order."""
        ...

    def issue_tokens(self, count: int = 1) -> list[str]:
        """Create `count` single-use enrolment tokens (only their hashes are kept)."""
        ...

    def enroll(self, token: str, public_key: bytes) -> Device:
        """Consume `token` and enrol the device with `public_key`, all or nothing.

        Raises:
            TokenRefused: the token is unknown or already used.
        """
        ...

    def device(self, device: str) -> Device | None: ...

    def devices(self) -> list[Device]: ...

    def stored(self, name: str) -> StoredBundle | None: ...

    def bundle_count(self) -> int: ...

    def accept(
        self, *, name: str, device: str, size: int, base: Head, head: Head, when: str
    ) -> Device:
        """Record bundle `name` and move the head from `base` to `head` (compare-and-swap),
        stamped with the next witness counter, all or nothing.

        Raises:
            LedgerBroken: the witnessed head is no longer `base`.
        """
        ...

    def witness_key(self) -> Ed25519PrivateKey:
        """DATA/witness.key (created on first use), which signs the org ledger and
        the head files; with a shared state, checked to be the fleet's one key.

        Raises:
            UsageError: DATA holds another key than the fleet's.
        """
        ...

    def take(self, bucket: str, rate: Rate) -> float:
        """Take one from the token bucket `bucket` ("upload:<device>", "enroll:<network>",
        "enroll") refilled at `rate`, across every process serving this state: 0 when
        allowed, else the seconds until one would be."""
        ...

    def head_lock(self, device: str) -> AbstractContextManager[object]:
        """Held while `device`'s head moves and its head file is written: one
        holder at a time across every process serving this state."""
        ...


def is_shared(url: str | None) -> bool:
    """Whether `--state URL` names a server database (PostgreSQL) rather than the embedded file."""
    return url is not None and url.startswith(_SCHEMES)


def redacted(url: str) -> str:
    """`url` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}@{host}"


def open_state(data: Path, url: str | None = None) -> CollectorState:
    """The collector's state: DATA/collector.db, or the PostgreSQL database at `url`.

    The witness key (DATA/witness.key), which signs the org ledger and the
    head files, stays in DATA either way; every process of a fleet holds a
    copy of the same key (`witness_key` refuses another).

    Raises:
        UsageError: `url` is neither empty nor a postgresql:// URL, or psycopg is
            not installed, or DATA cannot be created.
        StoreError: the database cannot be opened.
    """
    if url is None or url == "sqlite":
        from cleartrace.org.registry import Registry

        return Registry.open(data)
    if not is_shared(url):
        raise UsageError(
            f"--state {redacted(url)!r} is not a state this collector knows; give "
            "postgresql://USER@HOST/DATABASE, or leave it out for DATA/collector.db"
        )
    try:
        from cleartrace.org.registry_pg import PgRegistry
    except ImportError as exc:
        raise UsageError(
            "--state postgresql://… needs psycopg; install ClearTrace with its "
            "'postgresql' extra (pip install 'cleartrace[postgresql]')"
        ) from exc
    return PgRegistry.open(data, url)
