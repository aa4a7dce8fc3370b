"""The data categories a person consents to, and the kinds of personal data review flags."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cleartrace.errors import ConsentError

__all__ = ["DEPENDS_ON", "PII_WORDS", "Category", "PiiCategory", "parse_categories"]


class Category(StrEnum):
    KEYS = "keys"
    MOUSE_MOVE = "mouse_move"
    CLICKS = "clicks"
    SCROLL = "scroll"
    APP_FOCUS = "app_focus"
    WINDOW_TITLES = "window_titles"


class PiiCategory(StrEnum):
    """What review detects in typed text; a policy chooses which are searched for."""

    EMAIL = "email"
    PHONE = "phone"
    PAYMENT_CARD = "payment_card"
    IBAN = "iban"
    NATIONAL_ID = "national_id"
    IP_ADDRESS = "ip_address"
    URL_CREDENTIALS = "url_credentials"
    # Category names, not credentials: bandit's hard-coded password check misreads them.
    SECRET = "secret"  # noqa: S105
    PASSWORD = "password"  # noqa: S105


#: The kinds of personal data the detectors find, as a person reads them (notices, evidence).
PII_WORDS: dict[str, str] = {
    PiiCategory.EMAIL: "e-mail addresses",
    PiiCategory.PHONE: "phone numbers",
    PiiCategory.PAYMENT_CARD: "payment card numbers",
    PiiCategory.IBAN: "IBANs",
    PiiCategory.NATIONAL_ID: "national ID numbers",
    PiiCategory.IP_ADDRESS: "IP addresses",
    PiiCategory.URL_CREDENTIALS: "credentials in URLs",
    PiiCategory.SECRET: "keys and tokens",
    PiiCategory.PASSWORD: "passwords",
}

#: A title without the application it belongs to is meaningless.
DEPENDS_ON: dict[Category, Category] = {Category.WINDOW_TITLES: Category.APP_FOCUS}


def parse_categories(names: Iterable[str]) -> frozenset[Category]:
    """Parse category names given by a user.

    Raises:
        ConsentError: a name is not a category.
    """
    out = set()
    for name in names:
        try:
            out.add(Category(name))
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ConsentError(f"unknown category '{name}'; choose from: {known}") from None
    return frozenset(out)
