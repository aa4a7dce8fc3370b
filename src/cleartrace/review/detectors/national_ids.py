"""National identity and tax numbers.

Only formats that stand out from ordinary numbers are reported on their own:
a dashed US SSN, a UK NINO, a French NIR, a Spanish DNI and an Italian codice
fiscale. A bare run of nine or eleven digits (an undashed SSN, a Dutch BSN, a
German Steuer-ID) is as likely an order or account number, and their check
digits pass about one random number in ten, so those are reported only when
their name was typed just before them ("BSN: 123456782").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_national_ids"]

_Validate = Callable[[str], bool]

# Each entry: a candidate pattern, the python-stdnum check, the confidence,
# the detector's name. Patterns refuse to start or end inside a longer word
# or number.
_DISTINCTIVE: tuple[tuple[re.Pattern[str], _Validate, float, str], ...] = (
    # 123-45-6789; stdnum rejects area 000/666/9xx, group 00, serial 0000 and
    # the numbers once printed in advertisements. There is no check digit.
    (re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"), ssn.is_valid, 0.85, "stdnum.us.ssn"),
    # 1 85 05 78 006 084 36: sex, year, month, department (2A/2B for
    # Corsica), commune, serial and a mod-97 key.
    (
        re.compile(
            r"(?<![\w.])[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w]|[.,]\d)"
        ),
        nir.is_valid,
        0.85,
        "stdnum.fr.nir",
    ),
    # 12345678Z: eight digits and a mod-23 check letter.
    (re.compile(r"(?<![\w.-])\d{8}-?[A-Za-z](?!\w)"), dni.is_valid, 0.8, "stdnum.es.dni"),
    # RSSMRA85T10A562S: surname, name, birth date and place, check letter;
    # digits may be swapped for LMNPQRSTUV when two people would collide.
    (
        re.compile(
            r"(?<!\w)[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?!\w)",
            re.IGNORECASE,
        ),
        codicefiscale.is_valid,
        0.9,
        "stdnum.it.codicefiscale",
    ),
)

# A UK National Insurance number has no check digit and python-stdnum has no
# module for it, so HMRC's allocation rules are the whole check: the prefix
# letters exclude D F I Q U V (and O second), some pairs are never issued,
# and the suffix is A-D. Capitals only, as the number is always printed;
# lower case runs like this are more often hashes or identifiers in code.
_NINO = re.compile(
    r"(?<!\w)(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"
)

_KEYWORD_WINDOW = 40
_BARE_NUMBER = re.compile(r"(?<![\w.,-])(?:\d{9}|\d{11})(?![\w]|[.,-]\d)")
# Checks for bare numbers: the name that must precede the number, its
# length, the python-stdnum check and the detector's name.
_NAMED: tuple[tuple[re.Pattern[str], int, _Validate, str], ...] = (
    (
        re.compile(r"\b(?:ssn|social security(?: number| no\.?)?)\b", re.IGNORECASE),
        9,
        ssn.is_valid,
        "stdnum.us.ssn",
    ),
    (
        re.compile(r"\b(?:bsn|burgerservicenummer|sofi-?nummer)\b", re.IGNORECASE),
        9,
        bsn.is_valid,
        "stdnum.nl.bsn",
    ),
    (
        re.compile(
            r"\b(?:steuer-?id|steuer-?identifikationsnummer|identifikationsnummer|idnr"
            r"|tax[ -]?id)\b",
            re.IGNORECASE,
        ),
        11,
        idnr.is_valid,
        "stdnum.de.idnr",
    ),
)


def find_national_ids(text: str) -> Iterator[Finding]:
    """Yield national identity and tax numbers whose format and check digits hold."""
    for pattern, is_valid, confidence, detector in _DISTINCTIVE:
        for m in pattern.finditer(text):
            if is_valid(m.group()):
                yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), confidence, detector)
    for m in _NINO.finditer(text):
        yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), 0.7, "regex.gb.nino")
    for m in _BARE_NUMBER.finditer(text):
        number = m.group()
        window = (max(0, m.start() - _KEYWORD_WINDOW), m.start())
        for keyword, length, is_valid, detector in _NAMED:
            if len(number) == length and keyword.search(text, *window) and is_valid(number):
                yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), 0.8, detector)
                break
