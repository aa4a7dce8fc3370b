"""Applications during whose focus nothing is recorded.

Two sources: the policy's defaults (password managers, PIN and password
prompts, screen lockers), which the person cannot remove, and the person's own
list in the `exclusions` table, which they can. Every change to the personal
list commits in one transaction with its ledger record, so the officer sees
exactly the exclusions that were in force.

Matching is on the WM_CLASS class or instance name, case-insensitively, with
one frozenset lookup per name: it runs at every focus change.
"""

from __future__ import annotations

import sqlite3

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.records import check_app_name
from cleartrace.errors import UsageError
from cleartrace.store.db import transaction

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "Exclusions",
    "add_exclusion",
    "list_exclusions",
    "load_exclusions",
    "normalise_app",
    "remove_exclusion",
]

#: The built-in policy's exclusions, lower case.
DEFAULT_EXCLUSIONS: frozenset[str] = frozenset(DEFAULT_POLICY.exclusions)


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


def _personal(conn: sqlite3.Connection | None) -> list[str]:
    if conn is None:
        return []
    return [app for (app,) in conn.execute("SELECT app FROM exclusions ORDER BY app")]


def list_exclusions(
    conn: sqlite3.Connection | None, policy: Policy = DEFAULT_POLICY
) -> list[tuple[str, str]]:
    """(app, "default" | "personal") for every exclusion, defaults first.

    `conn` None means no store exists yet: only the defaults apply.
    """
    return [(app, "default") for app in policy.exclusions] + [
        (app, "personal") for app in _personal(conn)
    ]


def load_exclusions(conn: sqlite3.Connection | None, policy: Policy = DEFAULT_POLICY) -> Exclusions:
    """The matcher for the policy's defaults plus the personal list."""
    return Exclusions(frozenset(policy.exclusions) | frozenset(_personal(conn)))


def normalise_app(app: str) -> str:
    """The one spelling stored and ledgered for an application class.

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


def add_exclusion(ledger: Ledger, app: str, policy: Policy = DEFAULT_POLICY) -> str:
    """Add a personal exclusion and its ledger record in one transaction.

    Returns the stored (lower-case) name.

    Raises:
        UsageError: not an application class, or already excluded.
        StoreError: the store cannot be written.
    """
    name = normalise_app(app)
    if name in policy.exclusions:
        raise UsageError(f"'{name}' is already excluded by the policy '{policy.id}'")
    with transaction(ledger.conn, ledger.path) as conn:
        if conn.execute("SELECT 1 FROM exclusions WHERE app=?", (name,)).fetchone():
            raise UsageError(f"'{name}' is already one of your exclusions")
        conn.execute("INSERT INTO exclusions(app) VALUES (?)", (name,))
        ledger.append_in(conn, "exclusion.added", app=name)
    return name


def remove_exclusion(ledger: Ledger, app: str, policy: Policy = DEFAULT_POLICY) -> str:
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
    with transaction(ledger.conn, ledger.path) as conn:
        if conn.execute("DELETE FROM exclusions WHERE app=?", (name,)).rowcount == 0:
            raise UsageError(
                f"'{name}' is not one of your exclusions; see 'cleartrace exclude list'"
            )
        ledger.append_in(conn, "exclusion.removed", app=name)
    return name
