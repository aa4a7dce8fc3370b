"""E-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_emails", "find_phones", "is_phone_region"]

# The local part takes the characters real addresses use (letters of any
# script, digits, "._%+-") rather than everything RFC 5322 allows: quotes,
# slashes and braces would swallow the punctuation around an address in
# prose. The top-level domain is letters only, so a sentence's final full
# stop or a following comma is never part of the match. A user name in a URL
# ("https://alice@host/") follows a slash and is not an address.
_EMAIL = re.compile(
    r"(?<![\w.%+/-])"
    r"[\w%+-]+(?:\.[\w%+-]+)*"
    r"@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"
    r"[^\W\d_]{2,63}"
    r"(?![\w-])"
)

# libphonenumber's matcher is thorough but slow on long prose; a text goes to
# it only if it holds seven digits close together. International numbers,
# country code included, are at least that long; the few small territories
# that dial shorter national numbers are missed.
_PHONE_HINT = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6}")


def find_emails(text: str) -> Iterator[Finding]:
    """Yield the e-mail addresses in `text`."""
    for m in _EMAIL.finditer(text):
        yield Finding(PiiCategory.EMAIL, m.start(), m.end(), 0.9, "regex.email")


def is_phone_region(region: str) -> bool:
    """Tell whether libphonenumber knows `region` (an ISO 3166 alpha-2 code)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def find_phones(text: str, region: str) -> Iterator[Finding]:
    """Yield the phone numbers in `text` that are valid numbers.

    National numbers are read as dialled from `region`; numbers starting
    with "+" are read as international whatever the region. The leniency is
    STRICT_GROUPING: VALID's check of the number against its region's plan
    (which rejects dates, times, prices and most order numbers), plus digit
    groups placed as the region writes them. VALID alone reads reference
    numbers such as "INV-2024-000123" as the Washington number 202-400-0123,
    while the groupings people write ("(415) 555-2671", "+44 20 7946 0958",
    "415.555.2671", no separators at all) still pass.
    """
    if _PHONE_HINT.search(text) is None:
        return
    leniency = phonenumbers.Leniency.STRICT_GROUPING
    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
        yield Finding(PiiCategory.PHONE, m.start, m.end, 0.75, "phonenumbers")
