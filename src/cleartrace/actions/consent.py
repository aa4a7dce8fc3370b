"""Acts of consent: give, refuse, withdraw, and what is consented now.

Withdrawal is never blocked (consent/state.py), not even by an installed
policy that no longer verifies: it is then recorded under the built-in
default, and `Withdrawal.refused` says why, for the caller to tell the person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cleartrace.actions import sessions
from cleartrace.actions._notify import poke_recorder
from cleartrace.actions.ledger import read_ledger
from cleartrace.categories import Category
from cleartrace.consent import state
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.errors import PolicyRefused
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store.session_state import SessionState

__all__ = ["Withdrawal", "current", "give", "refuse", "show", "withdraw"]


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """What a withdrawal recorded, and under which policy."""

    withdrawn: list[Category]
    policy: Policy
    #: Why the installed policy was passed over for the built-in default, or None.
    refused: PolicyRefused | None = None


def current(ledger: Ledger, policy: Policy) -> state.ConsentState:
    """The consent in force under `policy`, from the ledger."""
    return state.consent_from_records(ledger.records(), policy)


def show(paths: Paths) -> tuple[Policy, state.ConsentState]:
    """The policy in force and the consent under it; reads without any key
    and creates nothing (the ledger's records are public, signed data).

    Raises:
        PolicyRefused: the installed policy does not verify.
    """
    policy = active_policy(paths)
    return policy, state.consent_from_records(read_ledger(paths), policy)


def give(home: Home, categories: Iterable[Category]) -> state.ConsentState:
    """Consent to `categories` (ledgered); returns the consent now.

    Raises:
        PolicyRefused: the installed policy does not verify.
        ConsentError: see `consent.state.give`.
    """
    policy = active_policy(home.paths)
    state.give(home.ledger, frozenset(categories), policy)
    poke_recorder(home.paths)
    return current(home.ledger, policy)


def refuse(
    home: Home, categories: Iterable[Category], *, skip_given: bool = False
) -> state.ConsentState:
    """Refuse `categories` (ledgered); returns the consent now. With
    `skip_given`, categories given already are left as they are (a dialog that
    asked about several), else naming one is an error (withdraw it instead).

    Raises:
        PolicyRefused: the installed policy does not verify.
        ConsentError: see `consent.state.refuse`.
    """
    policy = active_policy(home.paths)
    chosen = frozenset(categories)
    if skip_given:
        chosen -= current(home.ledger, policy).granted()
    state.refuse(home.ledger, chosen, policy)
    poke_recorder(home.paths)
    return current(home.ledger, policy)


def withdraw(
    home: Home, categories: Iterable[Category], *, delete_sessions: bool = False
) -> Withdrawal:
    """Withdraw (ledgered; a running recorder drops those hooks at once), under
    the built-in policy when the installed one does not verify; with
    `delete_sessions` every local session not being recorded goes too.

    Raises:
        ConsentError: no category named.
    """
    refused: PolicyRefused | None = None
    try:
        policy = active_policy(home.paths)
    except PolicyRefused as exc:
        policy, refused = DEFAULT_POLICY, exc
    withdrawn = state.withdraw(home.ledger, frozenset(categories), policy)
    if delete_sessions:
        for info in home.store.list_sessions():
            if info.state != SessionState.RECORDING:
                sessions.delete(home, info.id)
    poke_recorder(home.paths)
    return Withdrawal(withdrawn, policy, refused)
