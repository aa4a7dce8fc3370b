"""Applications during whose focus nothing is recorded.

Two sources: the policy's defaults (password managers, PIN and password
prompts, screen lockers), which the person cannot remove, and the person's own
list, which they can. Every change to the personal list commits in one
transaction with its ledger record, so the officer sees exactly the
exclusions that were in force.

The personal list names applications the person chose not to have recorded,
which is itself telling (a messenger, a health app), so no name is stored or
ledgered in plaintext: table `excluded_apps` holds each name sealed
(AES-256-GCM) under the exclusions key, keyed by its tag, HMAC-SHA256 under
the same key; the ledger carries only the tag (`app.excluded`, `app.included`).
The key is random, wrapped by the master key in `wrapped_keys`
(store/named_keys.py), and never leaves the device: the organisation can tell
one excluded application from another, not which it is.

Matching is on the WM_CLASS class or instance name, case-insensitively, with
one frozenset lookup per name: it runs at every focus change. The names are
unsealed once, when the list is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.records import check_app_name
from cleartrace.errors import StoreCorrupt, UsageError
from cleartrace.store import exclusion_rows
from cleartrace.store.crypto import seal, unseal
from cleartrace.store.db import empty_wal, transaction
from cleartrace.store.named_keys import EXCLUSIONS, named_key

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "Exclusions",
    "PersonalExclusions",
    "add_exclusion",
    "app_tag",
    "list_exclusions",
    "load_exclusions",
    "normalise_app",
    "remove_exclusion",
    "seal_plaintext_list",
]

#: The built-in policy's exclusions, lower case.
DEFAULT_EXCLUSIONS: frozenset[str] = frozenset(DEFAULT_POLICY.exclusions)

_TAG_CONTEXT = b"cleartrace-app-tag-v1\x00"
_SEAL_AAD = b"cleartrace-exclusion-v1\x00"


def app_tag(key: bytes, name: str) -> str:
    """The keyed hash that stands for application class `name` (as
    `normalise_app` spells it) in `excluded_apps` and the ledger: hex
    HMAC-SHA256 under the exclusions key of a context string, a zero byte and
    the UTF-8 name (vectors: tests/vectors/ledger/app-tags.json)."""
    return hmac.new(key, _TAG_CONTEXT + name.encode("utf-8"), hashlib.sha256).hexdigest()


class Exclusions:
    """An immutable set of excluded application names, matched case-insensitively."""

    __slots__ = ("_names",)

    def __init__(self, names: frozenset[str]) -> None:
        self._names = frozenset(n.casefold() for n in names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._names

    def __len__(self) -> int:
        return len(self._names)

    def is_excluded(self, app_class: str | None, instance: str | None = None) -> bool:
        """True when the WM_CLASS class or instance names an excluded application.

        Either may be None (unknown): an unknown application is not excluded,
        because there is nothing to match; the capture layer decides what an
        unknown window means.
        """
        return (app_class is not None and app_class.casefold() in self._names) or (
            instance is not None and instance.casefold() in self._names
        )


@dataclass(frozen=True, slots=True)
class PersonalExclusions:
    """The person's own list in the store at `path`, and the key that tags and
    seals its names (kept out of `repr()`)."""

    conn: sqlite3.Connection
    path: Path
    key: bytes = field(repr=False)

    @classmethod
    def open(cls, ledger: Ledger, master: bytes) -> PersonalExclusions:
        """The list in the ledger's store file, read on its connection; makes
        its key on first use.

        Raises:
            WrongKey: `master` was replaced by a rotation in another process.
            StoreCorrupt: the exclusions key does not open with `master`.
            DiskFull, StoreError: the store cannot be written or read.
        """
        conn, path = ledger.conn, ledger.path
        return cls(conn, path, named_key(conn, path, master, EXCLUSIONS))

    def tag(self, name: str) -> str:
        """The keyed hash that stands for `name` in the table and the ledger."""
        return app_tag(self.key, name)

    def sealed(self, name: str) -> tuple[str, bytes]:
        """(tag, sealed name): a row of `excluded_apps`."""
        tag = self.tag(name)
        return tag, seal(self.key, name.encode("utf-8"), _SEAL_AAD + tag.encode("ascii"))

    def names(self) -> list[str]:
        """The names, sorted.

        Raises:
            StoreCorrupt: a sealed name does not open.
            StoreError: the store cannot be read.
        """
        rows = exclusion_rows.sealed_rows(self.conn, self.path)
        try:
            return sorted(
                unseal(self.key, sealed, _SEAL_AAD + tag.encode("ascii")).decode("utf-8")
                for tag, sealed in rows
            )
        except (InvalidTag, UnicodeDecodeError):
            raise StoreCorrupt(
                f"an exclusion in {self.path} does not open; remove and add it again "
                "with 'cleartrace exclude'"
            ) from None


def seal_plaintext_list(ledger: Ledger, master: bytes) -> bool:
    """Move names from the plaintext `exclusions` table (versions before app
    tags) into `excluded_apps`, sealed, drop that table (`secure_delete`
    zeroes its pages) and empty the WAL, which would otherwise keep the names
    until some later checkpoint. Run by every `Home.open`; True when it moved one.

    Raises:
        WrongKey, StoreCorrupt: see `PersonalExclusions.open`.
        DiskFull, StoreError: the store cannot be written or read.
    """
    conn, path = ledger.conn, ledger.path
    if not exclusion_rows.has_plaintext_list(conn, path):
        return False
    personal = PersonalExclusions.open(ledger, master)
    with transaction(conn, path) as txn:
        if not exclusion_rows.seal_plaintext_list(txn, personal.sealed):
            return False  # another process moved it meanwhile
    if not empty_wal(conn, path):
        exclusion_rows.mark_checkpoint_due(conn, path)
    return True


def list_exclusions(
    personal: PersonalExclusions | None, policy: Policy = DEFAULT_POLICY
) -> list[tuple[str, str]]:
    """(app, "default" | "personal") for every exclusion, defaults first.

    `personal` None means no store exists yet: only the defaults apply.

    Raises:
        StoreCorrupt, StoreError: see `PersonalExclusions.names`.
    """
    own = [] if personal is None else personal.names()
    return [(app, "default") for app in policy.exclusions] + [(app, "personal") for app in own]


def load_exclusions(
    personal: PersonalExclusions | None, policy: Policy = DEFAULT_POLICY
) -> Exclusions:
    """The matcher for the policy's defaults plus the personal list.

    Raises:
        StoreCorrupt, StoreError: see `PersonalExclusions.names`.
    """
    own = [] if personal is None else personal.names()
    return Exclusions(frozenset(policy.exclusions) | frozenset(own))


def normalise_app(app: str) -> str:
    """The one spelling stored (sealed) and tagged for an application class.

    Raises:
        UsageError: empty, too long, or holding control characters.
    """
    name = app.strip().casefold()
    try:
        check_app_name(name)
    except ValueError:
        raise UsageError(
            "that is not an application class (at most 128 printable characters); "
            "run 'xprop WM_CLASS' and click the window to see its class"
        ) from None
    return name


def add_exclusion(
    ledger: Ledger, personal: PersonalExclusions, app: str, policy: Policy = DEFAULT_POLICY
) -> str:
    """Add a personal exclusion and its ledger record in one transaction.

    Returns the stored (lower-case) name.

    Raises:
        UsageError: not an application class, or already excluded.
        StoreError: the store cannot be written.
    """
    name = normalise_app(app)
    if name in policy.exclusions:
        raise UsageError(f"'{name}' is already excluded by the policy '{policy.id}'")
    tag, sealed = personal.sealed(name)
    with transaction(ledger.conn, ledger.path) as conn:
        if not exclusion_rows.add(conn, tag, sealed):
            raise UsageError(f"'{name}' is already one of your exclusions")
        ledger.append_in(conn, "app.excluded", app_tag=tag)
    return name


def remove_exclusion(
    ledger: Ledger, personal: PersonalExclusions, app: str, policy: Policy = DEFAULT_POLICY
) -> str:
    """Remove a personal exclusion and ledger it in one transaction.

    Returns the removed (lower-case) name.

    Raises:
        UsageError: the name is a default (defaults come from the policy), or
            not one of the person's exclusions.
        StoreError: the store cannot be written.
    """
    name = normalise_app(app)
    if name in policy.exclusions:
        raise UsageError(
            f"'{name}' is excluded by the policy '{policy.id}'; defaults come from the "
            "policy and cannot be removed here (ask whoever deploys the policy)"
        )
    tag = personal.tag(name)
    with transaction(ledger.conn, ledger.path) as conn:
        if not exclusion_rows.remove(conn, tag):
            raise UsageError(
                f"'{name}' is not one of your exclusions; see 'cleartrace exclude list'"
            )
        ledger.append_in(conn, "app.included", app_tag=tag)
    return name
