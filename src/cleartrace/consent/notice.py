"""What a person must be told before agreeing under an organisation's policy.

GDPR Art. 13 (and ISO/IEC TS 27560's consent record fields) ask that a person
learns, before consenting, who is responsible for the data and how to reach
them and their data protection officer, why it is collected and on what legal
basis, who receives it, where it is processed and how long it is kept. An
organisation's policy carries these as its `notice` object (format in
docs/policy-format.md); what the device itself decides (the hold period,
whether and where sessions are uploaded, how long the local copy stays) is
already in the policy's other fields and is not repeated here.

A notice is part of the signed, hashed policy, so a consent record names the
exact notice it was given to. It is optional in the format only so that
policies signed before it existed still verify with the hash they had;
`cleartrace org policy init` and `sign` refuse to write a policy without one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from cleartrace.errors import UsageError

__all__ = ["NOTICE_FIELDS", "REQUIRED", "Notice"]

NOTICE_FIELDS = (
    "controller",
    "dpo",
    "purposes",
    "legal_basis",
    "recipients",
    "processing_location",
    "retention",
    "no_performance_evaluation",
    "works_agreement",
)
#: What a notice cannot do without: who is responsible, how to reach them, and why.
REQUIRED = ("controller name", "controller contact", "purposes")
_MAX_TEXT = 2000
#: Unicode categories never shown as they are: controls (C0 and C1) and format characters
#: (zero-width, direction marks), which could hide or reorder what a person reads.
_HIDDEN = frozenset({"Cc", "Cf"})
_MAX_ITEMS = 20
# Bidirectional overrides could make a notice read differently from what was signed.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Notice:
    """The organisation's information for the person; see the module docstring."""

    controller_name: str
    controller_contact: str
    purposes: tuple[str, ...]
    #: How to reach the data protection officer; None: the organisation names none.
    dpo: str | None = None
    legal_basis: str | None = None
    recipients: tuple[str, ...] = ()
    processing_location: str | None = None
    #: How long the organisation keeps uploaded data, in its words.
    retention: str | None = None
    #: The organisation commits that the data is not used to evaluate individuals.
    no_performance_evaluation: bool = False
    #: The works agreement (or similar) that commitment rests on, where there is one.
    works_agreement: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The notice as the JSON object inside a policy (every key, nulls included)."""
        return {
            "controller": {"name": self.controller_name, "contact": self.controller_contact},
            "dpo": self.dpo,
            "purposes": list(self.purposes),
            "legal_basis": self.legal_basis,
            "recipients": list(self.recipients),
            "processing_location": self.processing_location,
            "retention": self.retention,
            "no_performance_evaluation": self.no_performance_evaluation,
            "works_agreement": self.works_agreement,
        }

    @classmethod
    def from_dict(cls, data: object, *, where: str = "policy 'notice'") -> Notice:
        """Build a notice from its JSON object; `from_dict(d).as_dict() == d`.

        Raises:
            UsageError: a key is unknown or missing, a value has the wrong
                shape, or controller or purposes are missing; the message
                names every missing one (`where` names the object).
        """
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be an object with: {', '.join(NOTICE_FIELDS)}")
        unknown = sorted(set(data) - set(NOTICE_FIELDS))
        if unknown:
            raise UsageError(
                f"{where} has unknown keys {unknown}; it may have: {', '.join(NOTICE_FIELDS)}"
            )
        controller = data.get("controller")
        if controller is None:
            controller = {}
        if not isinstance(controller, dict) or set(controller) - {"name", "contact"}:
            raise UsageError(f"{where}: 'controller' must be an object with 'name' and 'contact'")
        name = _text(_blank_none(controller.get("name")), where, "controller name")
        contact = _text(_blank_none(controller.get("contact")), where, "controller contact")
        purposes = _texts(data.get("purposes"), where, "purposes")
        missing = [
            what
            for what, value in zip(REQUIRED, (name, contact, purposes), strict=True)
            if not value
        ]
        if missing:
            raise UsageError(
                f"{where} is missing {', '.join(missing)}: people must know who is "
                "responsible for their data, how to reach them and why it is collected "
                "before they agree"
            )
        absent = sorted(set(NOTICE_FIELDS) - set(data))
        if absent:
            raise UsageError(
                f"{where} lacks {absent}; write null for a text, [] for a list "
                "or false where unknown"
            )
        flag = data["no_performance_evaluation"]
        if type(flag) is not bool:
            raise UsageError(f"{where}: 'no_performance_evaluation' must be true or false")
        return cls(
            controller_name=str(name),
            controller_contact=str(contact),
            purposes=purposes,
            dpo=_text(data["dpo"], where, "dpo"),
            legal_basis=_text(data["legal_basis"], where, "legal_basis"),
            recipients=_texts(data["recipients"], where, "recipients"),
            processing_location=_text(data["processing_location"], where, "processing_location"),
            retention=_text(data["retention"], where, "retention"),
            no_performance_evaluation=flag,
            works_agreement=_text(data["works_agreement"], where, "works_agreement"),
        )


def _blank_none(value: object) -> object:
    """A blank required text is reported as missing, not as malformed."""
    return None if isinstance(value, str) and not value.strip() else value


def _text(value: object, where: str, name: str) -> str | None:
    """A text a person reads: None, or non-blank, at most 2000 characters, no
    control or direction-override characters (which could hide what is shown)."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > _MAX_TEXT
        or any(c != "\n" and (unicodedata.category(c) in _HIDDEN or c in _BIDI) for c in value)
    ):
        raise UsageError(
            f"{where}: '{name}' must be a non-empty text of at most {_MAX_TEXT} characters "
            "without control characters, or null"
        )
    return value


def _texts(value: object, where: str, name: str) -> tuple[str, ...]:
    # No null for a list: it would read back as [], and the policy's hash (of
    # what is read) would then differ from the bytes that were signed.
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise UsageError(f"{where}: '{name}' must be a list of at most {_MAX_ITEMS} texts")
    out = tuple(_text(v, where, name) for v in value)
    if any(v is None for v in out):
        raise UsageError(f"{where}: '{name}' must hold texts, not null")
    return tuple(v for v in out if v is not None)
