"""The data categories a person consents to, and the kinds of personal data review flags."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cleartrace.errors import ConsentError

__all__ = [
    "DEPENDS_ON",
    "NEEDS_WHY",
    "OPT_IN",
    "PII_WORDS",
    "USUAL",
    "Category",
    "PiiCategory",
    "parse_categories",
]


class Category(StrEnum):
    KEYS = "keys"
    MOUSE_MOVE = "mouse_move"
    CLICKS = "clicks"
    SCROLL = "scroll"
    APP_FOCUS = "app_focus"
    WINDOW_TITLES = "window_titles"
    #: Not data of its own: whether key timing may leave the device as typed
    #: (else bundles carry it evened out, upload/retiming.py). No event kind
    #: belongs to it and the recorder captures nothing more for it.
    TYPING_RHYTHM = "typing_rhythm"


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

#: A title without the application it belongs to is meaningless, and so is
#: the timing of keys that are not recorded.
DEPENDS_ON: dict[Category, Category] = {
    Category.WINDOW_TITLES: Category.APP_FOCUS,
    Category.TYPING_RHYTHM: Category.KEYS,
}

#: Why each dependent category needs its base, as an error message says it.
NEEDS_WHY: dict[Category, str] = {
    Category.WINDOW_TITLES: "a window title is meaningless without its application",
    Category.TYPING_RHYTHM: "key timing is meaningless without the keys",
}

#: Categories that are off unless named: `--all` gives every category but
#: these, a policy asks for them only when its author names them, and the
#: consent dialog leaves their box unticked. Typing rhythm identifies a person
#: (dwell and flight times are a biometric), so it must be chosen on its own.
OPT_IN: frozenset[Category] = frozenset({Category.TYPING_RHYTHM})

#: Every category but the opt-in ones, in the usual order.
USUAL: tuple[Category, ...] = tuple(c for c in Category if c not in OPT_IN)


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
