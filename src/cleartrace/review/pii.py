"""Personal data and secrets in reconstructed typed text.

`detect` runs one detector per category over a stream's text and returns
non-overlapping findings. Findings carry offsets, never the text, so a report
of them can be logged or shown without repeating what was typed.

Every detector starts from a cheap regular expression and hands only its
candidates to the expensive checks (libphonenumber, python-stdnum check
digits, entropy), so a recording's worth of typing is scanned in well under
a second.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Mapping

from cleartrace.errors import UsageError
from cleartrace.review.detectors import (
    Finding,
    PiiCategory,
    find_emails,
    find_ibans,
    find_ip_addresses,
    find_national_ids,
    find_passwords,
    find_payment_cards,
    find_phones,
    find_secrets,
    find_url_credentials,
    is_phone_region,
)

__all__ = ["Finding", "PiiCategory", "detect", "device_region"]

# When two findings overlap and are equally confident, the more specific
# category keeps the span: a password in a URL is the URL's credential, a
# card number that also dials is a card.
_SPECIFICITY = {
    category: rank
    for rank, category in enumerate(
        (
            PiiCategory.URL_CREDENTIALS,
            PiiCategory.SECRET,
            PiiCategory.IBAN,
            PiiCategory.PAYMENT_CARD,
            PiiCategory.NATIONAL_ID,
            PiiCategory.EMAIL,
            PiiCategory.IP_ADDRESS,
            PiiCategory.PHONE,
            PiiCategory.PASSWORD,
        )
    )
}


def device_region(env: Mapping[str, str]) -> str:
    """The country this device dials from, as its locale says ("de_DE.UTF-8" →
    "DE"): LC_ALL, then LC_TELEPHONE, then LANG; "US" when none names one."""
    for name in ("LC_ALL", "LC_TELEPHONE", "LANG"):
        value = env.get(name, "")
        if value:
            country = value.split(".")[0].split("@")[0].partition("_")[2].upper()
            return country if is_phone_region(country) else "US"
    return "US"


def detect(
    text: str,
    *,
    app: str | None = None,
    title: str | None = None,
    categories: Iterable[PiiCategory] | None = None,
    region: str | None = None,
) -> list[Finding]:
    """Find personal data and secrets in `text`, sorted by start.

    `app` and `title` describe the window the text was typed in; they only
    serve to recognise password prompts. `categories` limits the search
    (None: all); a category left out is not searched for at all, so its
    spans may be reported under another category that matches them. Phone
    numbers without a "+" are read as dialled in `region` (None: this
    device's, from its locale; see `device_region`), and a bare nine digits is
    read as a US SSN only where `region` is US.

    Where findings overlap, the most confident one keeps its span; ties go
    to the more specific category, then to the longer span.

    Raises:
        UsageError: `region` is not a region libphonenumber knows.
    """
    if region is None:
        region = device_region(os.environ)
    if not is_phone_region(region):
        raise UsageError(
            f"unknown phone region '{region}'; use a two-letter country code such as US or DE"
        )
    scans: dict[PiiCategory, Callable[[], Iterable[Finding]]] = {
        PiiCategory.EMAIL: lambda: find_emails(text),
        PiiCategory.PHONE: lambda: find_phones(text, region),
        PiiCategory.PAYMENT_CARD: lambda: find_payment_cards(text),
        PiiCategory.IBAN: lambda: find_ibans(text),
        PiiCategory.NATIONAL_ID: lambda: find_national_ids(text, region),
        PiiCategory.IP_ADDRESS: lambda: find_ip_addresses(text),
        PiiCategory.URL_CREDENTIALS: lambda: find_url_credentials(text),
        PiiCategory.SECRET: lambda: find_secrets(text),
        PiiCategory.PASSWORD: lambda: find_passwords(text, app, title),
    }
    wanted = PiiCategory if categories is None else frozenset(categories)
    found = [finding for category in wanted for finding in scans[category]()]
    return _resolve(found)


def _resolve(findings: list[Finding]) -> list[Finding]:
    """Keep, greedily by precedence, each finding that overlaps none kept so far."""
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in sorted(findings, key=_precedence):
        # Kept findings never overlap, so sorted by start they are also sorted
        # by end: only the neighbours of the insertion point can collide.
        i = bisect.bisect_right(starts, finding.start)
        if i > 0 and kept[i - 1].end > finding.start:
            continue
        if i < len(kept) and kept[i].start < finding.end:
            continue
        starts.insert(i, finding.start)
        kept.insert(i, finding)
    return kept


def _precedence(finding: Finding) -> tuple[float, int, int, int]:
    return (
        -finding.confidence,
        _SPECIFICITY[finding.category],
        finding.start - finding.end,
        finding.start,
    )
