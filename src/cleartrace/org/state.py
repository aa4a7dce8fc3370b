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
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import UsageError
from cleartrace.org.devices import Device, Head, StoredBundle
from cleartrace.org.limits import Rate
from cleartrace.paths import write_private

__all__ = [
    "STATE_FILE",
    "CollectorState",
    "has_password",
    "is_shared",
    "open_state",
    "read_shared",
    "redacted",
    "refuse_fleet_data",
    "refuse_password",
    "remember_url",
    "scrubbed",
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


#: Connection parameters that are secrets: never written, logged or put in a message.
_SECRETS = frozenset({"password", "sslpassword"})
#: What a message says in place of a state that cannot be shown without its secrets.
_UNSHOWN = "(the given state, not shown)"


def _params(url: str) -> dict[str, str] | None:
    """`url` (a postgresql:// URL or a libpq keyword string) as libpq reads it, or
    None when it is not one or psycopg (which parses it as libpq does) is missing."""
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return None
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except ProgrammingError:
        return None


def _url_without_secrets(url: str) -> str:
    """`url` with the password of its userinfo and every secret query parameter left
    out, every other character as it was (so state.json names the same server and
    parameters, an '@' in a parameter included: the userinfo ends at the first
    '/', '?' or '#', as libpq reads it)."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        netloc = f"{userinfo.partition(':')[0]}@{hosts}"
    path, question, query = tail.partition("?")
    if question:
        kept = [
            part
            for part in query.split("&")
            if unquote(part.partition("=")[0]).strip() not in _SECRETS
        ]
        tail = path + ("?" + "&".join(kept) if kept else "")
    return f"{scheme}://{netloc}{tail}"


def redacted(url: str) -> str:
    """`url` without its password in any form libpq takes one (the URL's userinfo, a
    `password=` parameter, a keyword string's `password=`), for state.json and
    messages; a string that cannot be shown so is not shown at all."""
    params = _params(url)
    if params is None:
        return _UNSHOWN
    wanted = {k: v for k, v in params.items() if k not in _SECRETS}
    if url.startswith(_SCHEMES):
        shown = _url_without_secrets(url)
    else:
        from psycopg.conninfo import make_conninfo

        shown = make_conninfo("", **wanted)
    # What is shown must be what libpq reads, less the secrets, and nothing more.
    return shown if _params(shown) == wanted else _UNSHOWN


def has_password(url: str) -> bool:
    """Whether `url` carries a password (in any form libpq takes one)."""
    params = _params(url)
    return params is None or any(params.get(k) for k in _SECRETS) or redacted(url) == _UNSHOWN


def scrubbed(text: str, url: str) -> str:
    """`text` (a driver's message about `url`) with every secret of `url` blotted out."""
    for key, value in (_params(url) or {}).items():
        if key in _SECRETS and value:
            text = text.replace(value, "***")
    return text


def refuse_password(url: str, flag: str) -> str:
    """`url` as given on a command line, refused when it holds a password: every
    user of the host sees a process's command line (`ps`, /proc/PID/cmdline).

    Raises:
        UsageError: `url` carries a password.
    """
    if is_shared(url) and has_password(url):
        raise UsageError(
            f"{flag} {redacted(url)!r} holds a password, which every user of this host "
            "would see in the process list; give it without one, and the password in "
            "PGPASSWORD or in ~/.pgpass (or the file PGPASSFILE names)"
        )
    return url


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

        refuse_fleet_data(data, "--state")
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


def refuse_fleet_data(data: Path, flag: str) -> None:
    """Refuse DATA when it is a fleet process's data directory (DATA/state.json, no
    collector.db), naming the state to give with `flag` instead.

    The file is not followed: DATA is the collector's default bundle store, so
    whoever may put bundles there may put a state.json there too, naming a server
    of their choosing, to which ingest or the audit would send the operator's
    PGPASSWORD; and a command given DATA without `--state` must not start an
    empty DATA/collector.db beside the fleet's state.

    Raises:
        UsageError: DATA holds a state.json (damaged or not) and no collector.db.
    """
    if (data / "collector.db").is_file():
        return
    url = shared_url(data)
    if url is not None:
        raise UsageError(
            f"{data} is the data directory of a collector whose state is in PostgreSQL; "
            f"its {STATE_FILE} is not followed (anyone who can write to {data} could name "
            f"another server): give {flag} {redacted(url)!r}, the state itself"
        )


def remember_url(data: Path, url: str) -> None:
    """Write DATA/state.json naming `url` without its password (0600, all or nothing);
    a reader connects with libpq's own password sources (PGPASSWORD, ~/.pgpass).

    Raises:
        UsageError: DATA cannot be written.
    """
    shown = redacted(url)
    if shown == _UNSHOWN:
        raise UsageError(
            "the --state given cannot be written to state.json without its password; "
            "give it as postgresql://USER@HOST/DATABASE?PARAMETERS"
        )
    try:
        if shared_url(data) == shown:
            return
    except UsageError:
        pass  # damaged: written again
    obj = {"v": 1, "type": _STATE_TYPE, "state": shown}
    with write_private(data / STATE_FILE, "the collector's state pointer") as fh:
        json.dump(obj, fh, sort_keys=True)
        fh.write("\n")
