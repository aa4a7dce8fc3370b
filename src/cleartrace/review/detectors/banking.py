"""Payment card numbers and IBANs, confirmed by their check digits."""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum import iban, luhn

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_ibans", "find_payment_cards"]

# Card numbers as people write them: in groups of four, the last group
# shorter for lengths that are no multiple of four (4-4-4 for 12 digits up
# to 4-4-4-4-3 for 19), Amex and Diners' 4-6-5 / 4-6-4, or one plain run of
# 12 to 19 digits (ISO/IEC 7812's lengths). The separator must be the same
# throughout; a number glued to letters, or a decimal part (a price), is
# not a card.
_CARD = re.compile(
    r"(?<![\w.,+])"
    r"(?:\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?:(?P=s)\d{4}(?P=s)\d{1,3}|(?P=s)\d{1,4})?"
    r"|\d{4}(?P<a>[ -])\d{6}(?P=a)\d{4,5}"
    r"|\d{12,19})"
    r"(?![\w+]|[.,]\d)"
)

_16_TO_19 = (16, 17, 18, 19)
_MAESTRO = (12, 13, 14, 15, *_16_TO_19)  # the one scheme that issues all of 7812's lengths
# Issuer identification number ranges of the networks in use, with the
# lengths they issue (from the networks' published IIN tables). python-stdnum
# has Luhn but no card-network table; Luhn alone passes one random number in
# ten, the prefix and length cut that by another order of magnitude.
_IIN_RANGES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("34", "34", (15,)),  # American Express
    ("37", "37", (15,)),  # American Express
    ("36", "36", (14, *_16_TO_19)),  # Diners Club International
    ("300", "305", _16_TO_19),  # Diners Club
    ("38", "39", _16_TO_19),  # Diners Club
    ("6011", "6011", _16_TO_19),  # Discover
    ("644", "649", _16_TO_19),  # Discover
    ("65", "65", _16_TO_19),  # Discover
    ("3528", "3589", _16_TO_19),  # JCB
    ("62", "62", _16_TO_19),  # UnionPay
    ("2200", "2204", _16_TO_19),  # Mir
    ("5018", "5018", _MAESTRO),  # Maestro
    ("5020", "5020", _MAESTRO),  # Maestro
    ("5038", "5038", _MAESTRO),  # Maestro
    ("6304", "6304", _MAESTRO),  # Maestro
    ("6759", "6759", _MAESTRO),  # Maestro UK
    ("6761", "6763", _MAESTRO),  # Maestro
)

# An IBAN is a country code, two check digits and up to 30 letters or digits,
# printed in groups of four. Candidates may run into a following four-letter
# word ("... 7034 that"); `_iban_in` trims such groups off again.
_IBAN = re.compile(
    r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)", re.IGNORECASE
)
_IBAN_MIN_LENGTH = 15  # Norway


def find_payment_cards(text: str) -> Iterator[Finding]:
    """Yield payment card numbers: a known issuer prefix and length, and a valid Luhn digit."""
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if _known_issuer(digits) and luhn.is_valid(digits):
            yield Finding(PiiCategory.PAYMENT_CARD, m.start(), m.end(), 0.95, "stdnum.luhn")


def _known_issuer(digits: str) -> bool:
    return any(
        len(digits) in lengths and low <= digits[: len(low)] <= high
        for low, high, lengths in _IIN_RANGES
    )


def find_ibans(text: str) -> Iterator[Finding]:
    """Yield IBANs, with or without spaces, that pass ISO 13616's mod-97 check and
    the country's BBAN format."""
    for m in _IBAN.finditer(text):
        end = _iban_in(m.group())
        if end:
            yield Finding(PiiCategory.IBAN, m.start(), m.start() + end, 0.95, "stdnum.iban")


def _iban_in(candidate: str) -> int:
    """Return the length of the longest valid IBAN that `candidate` starts with, or 0."""
    while len(candidate) >= _IBAN_MIN_LENGTH:
        if iban.is_valid(candidate):
            return len(candidate)
        cut = candidate.rfind(" ")
        if cut < 0:
            return 0
        candidate = candidate[:cut]
    return 0
