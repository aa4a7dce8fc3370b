"""National identity and tax numbers.

Formats that stand out from ordinary numbers are reported on their own: a
US SSN in dashes or spaces, a UK NINO, a French NIR, a Spanish DNI, an
Italian codice fiscale, a Dutch BSN in its dotted form and a German
Steuer-ID in its printed groups. A bare run of eleven digits that passes the
Steuer-ID's check digit and digit-count rule, or of nine that passes the
BSN's eleven-test, is reported without its name too (auto-redaction removes
what is found, so a missed number costs more than an order number wrongly
removed), at a lower confidence and never right after "order", "invoice",
"#" and the like. A bare nine-digit SSN has no check digit at all: it is
reported unnamed only on a device set up in the US, and elsewhere when its
name was typed just before it ("SSN: 536904399").
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

from cleartrace.review.detectors.base import Finding, PiiCategory, is_reference

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
    # 536 90 4399: the same number grouped with spaces.
    (
        re.compile(r"(?<![\w-])\d{3} \d{2} \d{4}(?![\w-]|[.,]\d)"),
        lambda number: ssn.is_valid(number.replace(" ", "-")),
        0.8,
        "stdnum.us.ssn",
    ),
    # 1112.22.333: a BSN as Dutch documents print it.
    (
        re.compile(r"(?<![\w.])\d{4}\.\d{2}\.\d{3}(?![\w]|[.,]\d)"),
        bsn.is_valid,
        0.8,
        "stdnum.nl.bsn",
    ),
    # 65 309 174 250: a Steuer-ID as the tax office's letter prints it.
    (
        re.compile(r"(?<![\w.,])\d{2} \d{3} \d{3} \d{3}(?![\w]|[.,]\d)"),
        idnr.is_valid,
        0.8,
        "stdnum.de.idnr",
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
_IDNR_LENGTH = 11
_BSN_LENGTH = 9  # and an undashed SSN's
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


def find_national_ids(text: str, region: str = "US") -> Iterator[Finding]:
    """Yield national identity and tax numbers whose format and check digits hold.

    `region` is where the device is set up: it decides whether a bare nine
    digits that could be an SSN are read as one.
    """
    for pattern, is_valid, confidence, detector in _DISTINCTIVE:
        for m in pattern.finditer(text):
            if is_valid(m.group()):
                yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), confidence, detector)
    for m in _NINO.finditer(text):
        yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), 0.7, "regex.gb.nino")
    for m in _BARE_NUMBER.finditer(text):
        number = m.group()
        window = (max(0, m.start() - _KEYWORD_WINDOW), m.start())
        named = False
        for keyword, length, is_valid, detector in _NAMED:
            if len(number) == length and keyword.search(text, *window):
                # A number under one ID's name that fails its check is no other ID.
                named = True
                if is_valid(number):
                    yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), 0.8, detector)
                break
        if named or is_reference(text, m.start()):
            continue
        unnamed = _unnamed(number, region)
        if unnamed is not None:
            yield Finding(PiiCategory.NATIONAL_ID, m.start(), m.end(), *unnamed)


def _unnamed(number: str, region: str) -> tuple[float, str] | None:
    """The confidence and detector for a bare number typed without its name, if any."""
    if len(number) == _IDNR_LENGTH and idnr.is_valid(number):
        return 0.7, "stdnum.de.idnr"
    if len(number) == _BSN_LENGTH and bsn.is_valid(number):
        return 0.7, "stdnum.nl.bsn"
    if len(number) == _BSN_LENGTH and region == "US" and ssn.is_valid(number):
        return 0.6, "stdnum.us.ssn"
    return None
