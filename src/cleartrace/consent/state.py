"""Current consent, derived from the ledger, and the acts that change it.

There is no separate consent table to drift from the ledger: the state is a
fold over the signed records, so what the officer verifies is what the
recorder obeys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cleartrace.categories import DEPENDS_ON, Category
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.errors import ConsentError

__all__ = ["ConsentState", "consent_from_records", "give", "refuse", "withdraw"]

_STATE_OF_KIND = {
    "consent.given": "given",
    "consent.refused": "refused",
    "consent.withdrawn": "withdrawn",
}


@dataclass(frozen=True, slots=True)
class ConsentState:
    by_category: dict[Category, str]

    def granted(self) -> frozenset[Category]:
        return frozenset(c for c, s in self.by_category.items() if s == "given")

    def as_dict(self) -> dict[str, str]:
        return {c.value: self.by_category.get(c, "not asked") for c in Category}


def consent_from_records(records: Iterable[dict[str, Any]]) -> ConsentState:
    """The latest act per category wins."""
    state: dict[Category, str] = {}
    for record in records:
        new = _STATE_OF_KIND.get(record.get("kind", ""))
        if new is None:
            continue
        for name in record.get("categories", []):
            try:
                state[Category(name)] = new
            except ValueError:
                continue  # a category of a later version; not ours to enforce
    return ConsentState(state)


def _current(ledger: Ledger) -> frozenset[Category]:
    return consent_from_records(ledger.records()).granted()


def give(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Give consent; returns the categories newly given (already given ones are no-ops).

    Raises:
        ConsentError: a category the policy does not request, or a dependency
            (window titles without application focus) not met.
    """
    unknown = categories - set(policy.categories)
    if unknown:
        names = ", ".join(sorted(c.value for c in unknown))
        raise ConsentError(f"the policy '{policy.id}' does not ask for: {names}")
    granted = _current(ledger)
    for needs, base in DEPENDS_ON.items():
        if needs in categories and base not in categories | granted:
            raise ConsentError(
                f"'{needs.value}' needs '{base.value}': a title is meaningless without its "
                f"application; give both, e.g. --category {base.value} --category {needs.value}"
            )
    new = sorted(categories - granted)
    if new:
        ledger.append("consent.given", categories=[c.value for c in new], policy=policy.reference())
    return new


def refuse(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Record a refusal; a refusal of a given category withdraws it."""
    chosen = sorted(categories | _dependents(categories))
    ledger.append(
        "consent.refused", categories=[c.value for c in chosen], policy=policy.reference()
    )
    return chosen


def withdraw(ledger: Ledger, categories: frozenset[Category], policy: Policy) -> list[Category]:
    """Withdraw consent; withdrawing a category withdraws those that depend on it."""
    chosen = sorted((categories | _dependents(categories)) & _current(ledger))
    if chosen:
        ledger.append(
            "consent.withdrawn", categories=[c.value for c in chosen], policy=policy.reference()
        )
    return chosen


def _dependents(categories: frozenset[Category]) -> frozenset[Category]:
    return frozenset(needs for needs, base in DEPENDS_ON.items() if base in categories)
