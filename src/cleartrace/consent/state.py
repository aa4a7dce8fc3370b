"""Current consent, derived from the ledger, and the acts that change it.

There is no separate consent table to drift from the ledger: the state is a
fold over the signed records, so what the officer verifies is what the
recorder obeys.

Rules (each act appends at most one record, in one `BEGIN IMMEDIATE`
transaction with the read of the current state, so two processes acting at
once cannot both decide on a stale state):

- `give`: categories the policy asks for. `window_titles` needs `app_focus`
  and `typing_rhythm` needs `keys`, already given or given in the same act.
  Already given categories are left out of the record; if nothing is new, no
  record is written (a repeated "yes" changes nothing, and the ledger should
  show acts, not clicks).
- `refuse`: answers "no" for categories not currently given. Refusing
  `app_focus` refuses `window_titles` too. Refusing a category that is given
  is refused with a hint to withdraw instead: withdrawal is the act the law
  and the officer care about, and it must say so. Already refused ones are
  left out; nothing new, no record.
- `withdraw`: given categories only, whatever the policy now asks for;
  withdrawing `app_focus` withdraws `window_titles` (and `keys`,
  `typing_rhythm`) in the same record.
  Nothing given among them, no record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cleartrace.categories import DEPENDS_ON, NEEDS_WHY, Category
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.errors import ConsentError
from cleartrace.store import ledger_rows
from cleartrace.store.db import transaction

__all__ = ["ConsentState", "ConsentStatus", "consent_from_records", "give", "refuse", "withdraw"]


class ConsentStatus(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    NOT_ASKED = "not asked"


_STATUS_OF_KIND = {
    "consent.given": ConsentStatus.GIVEN,
    "consent.refused": ConsentStatus.REFUSED,
    "consent.withdrawn": ConsentStatus.WITHDRAWN,
}


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The latest answer per category; categories never asked are absent."""

    by_category: Mapping[Category, ConsentStatus]

    def status(self, category: Category) -> ConsentStatus:
        return self.by_category.get(category, ConsentStatus.NOT_ASKED)

    def granted(self) -> frozenset[Category]:
        """The categories that may be recorded now."""
        return frozenset(c for c, s in self.by_category.items() if s is ConsentStatus.GIVEN)

    def as_dict(self) -> dict[str, str]:
        """{category: "given" | "refused" | "withdrawn" | "not asked"} for every category."""
        return {c.value: self.status(c).value for c in Category}


def consent_from_records(
    records: Iterable[Mapping[str, Any]], policy: Policy | None = None
) -> ConsentState:
    """Fold ledger records, oldest first, into the current consent.

    The latest act per category wins. Categories this version does not know
    (written by a newer one) are skipped: nothing here can record them.

    With `policy`, a "yes" or "no" counts only if it was given to exactly that
    policy (its SHA-256): consent given to other terms — an older default, or
    before the organisation's policy was installed — leaves the category not
    asked, so the person is asked again. A withdrawal counts whatever policy
    it names: it is never weaker for naming another text.
    """
    state: dict[Category, ConsentStatus] = {}
    for record in records:
        new = _STATUS_OF_KIND.get(record.get("kind", ""))
        if new is None:
            continue
        if (
            policy is not None
            and new is not ConsentStatus.WITHDRAWN
            and record.get("policy", {}).get("sha256") != policy.sha256
        ):
            new = ConsentStatus.NOT_ASKED
        for name in record.get("categories", ()):
            try:
                category = Category(name)
            except ValueError:
                continue
            if new is ConsentStatus.NOT_ASKED:
                state.pop(category, None)
            else:
                state[category] = new
    return ConsentState(state)


def _current(ledger: Ledger, conn: sqlite3.Connection, policy: Policy) -> ConsentState:
    """The consent in force as read on `conn`, inside the caller's transaction."""
    return consent_from_records(ledger_rows.records(conn, ledger.path), policy)


def _names(categories: Iterable[Category]) -> str:
    return ", ".join(sorted(c.value for c in categories))


def _with_dependents(categories: frozenset[Category]) -> frozenset[Category]:
    return categories | {needs for needs, base in DEPENDS_ON.items() if base in categories}


def _check_asked(categories: frozenset[Category], policy: Policy) -> None:
    if not categories:
        raise ConsentError("no category named; name at least one (or all of them)")
    unknown = categories - set(policy.categories)
    if unknown:
        raise ConsentError(
            f"the policy '{policy.id}' v{policy.version} does not ask for: {_names(unknown)}"
        )


def _record(
    ledger: Ledger, conn: sqlite3.Connection, kind: str, chosen: list[Category], policy: Policy
) -> None:
    ledger.append_in(conn, kind, categories=[c.value for c in chosen], policy=policy.reference())


def give(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Give consent under `policy`; returns the categories newly given (sorted).

    Raises:
        ConsentError: no category, a category the policy does not ask for, or
            a dependent category without its base (window titles without
            application focus, typing rhythm without keys).
        StoreError: the ledger cannot be written.
    """
    _check_asked(categories, policy)
    with transaction(ledger.conn, ledger.path) as conn:
        granted = _current(ledger, conn, policy).granted()
        for needs, base in DEPENDS_ON.items():
            if needs in categories and base not in categories | granted:
                raise ConsentError(
                    f"'{needs.value}' needs '{base.value}': {NEEDS_WHY[needs]}; "
                    f"give '{base.value}' too"
                )
        new = sorted(categories - granted)
        if new:
            _record(ledger, conn, "consent.given", new, policy)
    return new


def refuse(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Record a "no"; returns the categories newly refused (sorted).

    Raises:
        ConsentError: no category, a category the policy does not ask for, or
            one that is given (withdraw it instead).
        StoreError: the ledger cannot be written.
    """
    _check_asked(categories, policy)
    with transaction(ledger.conn, ledger.path) as conn:
        state = _current(ledger, conn, policy)
        given = categories & state.granted()
        if given:
            raise ConsentError(
                f"consent is given for: {_names(given)}; withdraw it instead of refusing"
            )
        # A dependent the policy does not ask for (typing rhythm, unless named)
        # was never a question, so it is not answered either.
        chosen = sorted(
            c
            for c in _with_dependents(categories)
            if state.status(c) not in (ConsentStatus.REFUSED, ConsentStatus.GIVEN)
            and (c in categories or c in policy.categories)
        )
        if chosen:
            _record(ledger, conn, "consent.refused", chosen, policy)
    return chosen


def withdraw(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Withdraw consent; returns the categories withdrawn (sorted), dependents included.

    Raises:
        ConsentError: no category named.
        StoreError: the ledger cannot be written.
    """
    # Withdrawal is never blocked by the policy: a category a newer policy no
    # longer asks for can still be withdrawn.
    if not categories:
        raise ConsentError("no category named; name at least one (or all of them)")
    with transaction(ledger.conn, ledger.path) as conn:
        # Whatever policy a "yes" was given to, it can be taken back.
        given = consent_from_records(ledger_rows.records(conn, ledger.path)).granted()
        chosen = sorted(_with_dependents(categories) & given)
        if chosen:
            _record(ledger, conn, "consent.withdrawn", chosen, policy)
    return chosen
