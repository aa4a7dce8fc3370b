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

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import UsageError
from cleartrace.org.devices import Device, Head, StoredBundle
from cleartrace.org.limits import Rate
from cleartrace.paths import write_private

__all__ = [
    "STATE_FILE",
    "CollectorState",
    "is_shared",
    "open_state",
    "read_shared",
    "redacted",
    "remember_url",
    "shared_url",
]

_SCHEMES = ("postgresql://", "postgres://")
#: DATA/state.json: where a fleet process's state is (its URL without a password),
#: so that `--heads-from DATA` and the audit find it from the data directory alone.
STATE_FILE = "state.json"
_STATE_TYPE = "cleartrace-collector-state"


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
    if url is None:
        from cleartrace.org.registry import Registry

        return Registry.open(data)
    if not is_shared(url):
        raise UsageError(
            f"--state {redacted(url)!r} is not a state this collector knows; give "
            "postgresql://USER@HOST/DATABASE, or leave it out for DATA/collector.db"
        )
    state: CollectorState = _backend().PgRegistry.open(data, url)
    return state


def _backend() -> Any:
    """org/registry_pg.py, which needs psycopg (the `postgresql` extra).

    Raises:
        UsageError: psycopg is not installed.
    """
    try:
        from cleartrace.org import registry_pg
    except ImportError as exc:
        raise UsageError(
            "a collector state on PostgreSQL needs psycopg; install ClearTrace with its "
            "'postgresql' extra (pip install 'cleartrace[postgresql]')"
        ) from exc
    return registry_pg


def read_shared(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one read-only query on the PostgreSQL state at `url` (ingest's and
    the audit's view, which must not change it).

    Raises:
        UsageError: psycopg is not installed.
        StoreError: the database cannot be reached or read.
    """
    rows: list[tuple[Any, ...]] = _backend().read_shared(url, sql)
    return rows


def shared_url(data: Path) -> str | None:
    """The PostgreSQL URL DATA/state.json names (written by a collector serving a
    shared state from DATA), or None when there is no such file.

    Raises:
        UsageError: the file is there but damaged.
    """
    path = data / STATE_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(
            f"cannot read {path} ({type(exc).__name__}); start a collector with --state "
            "--data on this directory once to write it again"
        ) from None
    url = obj.get("state") if isinstance(obj, dict) and obj.get("type") == _STATE_TYPE else None
    if not isinstance(url, str) or not is_shared(url):
        raise UsageError(
            f"{path} does not name a collector's PostgreSQL state; start a collector with "
            "--state --data on this directory once to write it again"
        )
    return url


def remember_url(data: Path, url: str) -> None:
    """Write DATA/state.json naming `url` without its password (0600, all or nothing);
    a reader connects with libpq's own password sources (PGPASSWORD, ~/.pgpass).

    Raises:
        UsageError: DATA cannot be written.
    """
    shown = redacted(url)
    try:
        if shared_url(data) == shown:
            return
    except UsageError:
        pass  # damaged: written again
    obj = {"v": 1, "type": _STATE_TYPE, "state": shown}
    with write_private(data / STATE_FILE, "the collector's state pointer") as fh:
        json.dump(obj, fh, sort_keys=True)
        fh.write("\n")
