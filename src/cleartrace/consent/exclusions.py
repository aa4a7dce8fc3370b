"""Applications during whose focus nothing is recorded.

The policy's defaults (password managers, PIN and password prompts, screen
lockers) cannot be removed by the person; their own list can. Matching is on
the WM_CLASS class or instance, case-insensitively, with a frozenset lookup:
it runs at every focus change.
"""

from __future__ import annotations

import sqlite3

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.errors import UsageError
from cleartrace.store.db import transaction

__all__ = ["Exclusions", "add_exclusion", "list_exclusions", "load_exclusions", "remove_exclusion"]


class Exclusions:
    __slots__ = ("_names",)

    def __init__(self, names: frozenset[str]) -> None:
        self._names = frozenset(n.lower() for n in names)

    def is_excluded(self, app_class: str | None) -> bool:
        return app_class is not None and app_class.lower() in self._names


def _personal(conn: sqlite3.Connection | None) -> list[str]:
    if conn is None:
        return []
    return [app for (app,) in conn.execute("SELECT app FROM exclusions ORDER BY app")]


def list_exclusions(conn: sqlite3.Connection | None, policy: Policy) -> list[tuple[str, str]]:
    """(app, "default" | "personal") for every exclusion."""
    return [(app, "default") for app in policy.exclusions] + [
        (app, "personal") for app in _personal(conn)
    ]


def load_exclusions(conn: sqlite3.Connection | None, policy: Policy) -> Exclusions:
    return Exclusions(frozenset(policy.exclusions) | frozenset(_personal(conn)))


def _normalise(app: str) -> str:
    name = app.strip().lower()
    if not name or len(name) > 256 or any(ch.isspace() for ch in name):
        raise UsageError(f"'{app}' is not an application class; see the WM_CLASS shown by xprop")
    return name


def add_exclusion(ledger: Ledger, app: str, policy: Policy) -> None:
    """Add a personal exclusion and its ledger record in one transaction."""
    name = _normalise(app)
    if name in policy.exclusions:
        raise UsageError(f"'{name}' is already excluded by the policy")
    with transaction(ledger.conn, ledger.path) as conn:
        if conn.execute("SELECT 1 FROM exclusions WHERE app=?", (name,)).fetchone():
            raise UsageError(f"'{name}' is already excluded")
        conn.execute("INSERT INTO exclusions(app) VALUES (?)", (name,))
        ledger.append_in(conn, "exclusion.added", app=name)


def remove_exclusion(ledger: Ledger, app: str, policy: Policy) -> None:
    """Remove a personal exclusion; the policy's defaults stay."""
    name = _normalise(app)
    if name in policy.exclusions:
        raise UsageError(
            f"'{name}' is excluded by the policy '{policy.id}' and cannot be removed here"
        )
    with transaction(ledger.conn, ledger.path) as conn:
        if conn.execute("DELETE FROM exclusions WHERE app=?", (name,)).rowcount == 0:
            raise UsageError(
                f"'{name}' is not one of your exclusions; see 'cleartrace exclude list'"
            )
        ledger.append_in(conn, "exclusion.removed", app=name)
