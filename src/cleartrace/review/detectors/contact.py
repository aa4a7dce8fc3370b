"""E-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from cleartrace.review.detectors.base import Finding, PiiCategory, is_reference

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
# Shorter possible numbers are service and extension numbers, and more
# often quantities or order numbers than anyone's phone.
_MIN_SIGNIFICANT = 7
_NANP_GROUPS = re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_DIGIT_GROUPS = re.compile(r"\d{2,4}(?:[ .-]\d{2,4}){1,4}")
_DATE_OR_TIME = re.compile(
    r"\d{1,4}([./-])\d{1,2}\1\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}:\d{2}(?::\d{2})?"
)


def find_emails(text: str) -> Iterator[Finding]:
    """Yield the e-mail addresses in `text`."""
    for m in _EMAIL.finditer(text):
        yield Finding(PiiCategory.EMAIL, m.start(), m.end(), 0.9, "regex.email")


def is_phone_region(region: str) -> bool:
    """Tell whether libphonenumber knows `region` (an ISO 3166 alpha-2 code)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def find_phones(text: str, region: str) -> Iterator[Finding]:
    """Yield the phone numbers in `text` that are possible numbers, assigned or not.

    National numbers are read as dialled from `region`; numbers starting
    with "+" (or the "00" international prefix) are read as international
    whatever the region. A number that libphonenumber deems valid and whose
    digit groups sit where the region writes them (STRICT_GROUPING) is
    reported as before. A number that is only possible (the right length
    for its country, but in a range not assigned, or written in groups the
    metadata does not list) is reported when it is written as only a phone
    number is: with its country code, with the region's trunk prefix
    ("0 30 ...", "(0648)"), in North America's 3-3-4 groups, or, where a
    country dials without a trunk prefix (Spain, Italy, Poland), in groups
    of digits. A bare run of digits, a date, a time, a version or a number
    right after "order", "invoice", "#" or "Nr." is not one.
    """
    if _PHONE_HINT.search(text) is None:
        return
    strict = {
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
        )
    }
    possible = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.POSSIBLE
    )
    for m in possible:
        if is_reference(text, m.start):
            continue
        if (m.start, m.end) in strict or _written_as_phone(m.raw_string, m.number, region):
            yield Finding(PiiCategory.PHONE, m.start, m.end, 0.75, "phonenumbers")


def _written_as_phone(raw: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
    if _DATE_OR_TIME.fullmatch(raw):
        return False
    if len(phonenumbers.national_significant_number(number)) < _MIN_SIGNIFICANT:
        return False
    if raw.startswith(("+", "00")):
        return True
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    trunk = metadata.national_prefix if metadata is not None else None
    if phonenumbers.country_code_for_region(region) == 1:
        return _NANP_GROUPS.fullmatch(raw) is not None
    if trunk:
        return raw.lstrip("(").startswith(trunk)
    return _DIGIT_GROUPS.fullmatch(raw) is not None
