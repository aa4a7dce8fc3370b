"""Consent: categories, the policy, the signed ledger and its verifier."""

from __future__ import annotations

from cleartrace.categories import DEPENDS_ON, Category, parse_categories
from cleartrace.consent.exclusions import (
    DEFAULT_EXCLUSIONS,
    Exclusions,
    PersonalExclusions,
    add_exclusion,
    list_exclusions,
    load_exclusions,
    remove_exclusion,
)
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.removal import remove_session
from cleartrace.consent.signed_policy import (
    SignedPolicy,
    active_policy,
    install_policy,
    installed_policy,
    read_signed_policy,
)
from cleartrace.consent.state import (
    ConsentState,
    ConsentStatus,
    consent_from_records,
    give,
    refuse,
    withdraw,
)
from cleartrace.consent.verify import VerifyReport, parse_head, verify_export

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "DEFAULT_POLICY",
    "DEPENDS_ON",
    "Category",
    "ConsentState",
    "ConsentStatus",
    "Exclusions",
    "Ledger",
    "PersonalExclusions",
    "Policy",
    "SignedPolicy",
    "VerifyReport",
    "active_policy",
    "add_exclusion",
    "consent_from_records",
    "give",
    "install_policy",
    "installed_policy",
    "list_exclusions",
    "load_exclusions",
    "parse_categories",
    "parse_head",
    "read_signed_policy",
    "refuse",
    "remove_exclusion",
    "remove_session",
    "verify_export",
    "withdraw",
]
