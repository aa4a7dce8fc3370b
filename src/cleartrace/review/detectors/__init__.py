"""The detectors behind `cleartrace.review.pii.detect`, one module per family.

Each `find_*` function scans one text and yields `Finding`s in any order,
possibly overlapping; `detect` chooses among them.
"""

from __future__ import annotations

from cleartrace.review.detectors.banking import find_ibans, find_payment_cards
from cleartrace.review.detectors.base import Finding, PiiCategory
from cleartrace.review.detectors.contact import find_emails, find_phones, is_phone_region
from cleartrace.review.detectors.national_ids import find_national_ids
from cleartrace.review.detectors.network import find_ip_addresses, find_url_credentials
from cleartrace.review.detectors.passwords import find_passwords
from cleartrace.review.detectors.tokens import find_secrets

__all__ = [
    "Finding",
    "PiiCategory",
    "find_emails",
    "find_ibans",
    "find_ip_addresses",
    "find_national_ids",
    "find_passwords",
    "find_payment_cards",
    "find_phones",
    "find_secrets",
    "find_url_credentials",
    "is_phone_region",
]
