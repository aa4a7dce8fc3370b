"""The notice in words: one list of facts every place that shows a policy uses.

The consent dialog, `cleartrace consent show`, `cleartrace org policy show`
and the tray's privacy window all render `facts(policy)`, so a person reads
the same thing wherever they look, and a fact added here appears everywhere.
What the organisation wrote comes from the policy's `notice`; what the policy
itself decides (upload, hold period, local copy) is said from its fields, so
it can never disagree with what the device does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cleartrace.categories import PII_WORDS, Category
from cleartrace.consent.policy import Policy

__all__ = ["Fact", "facts", "notice_json"]

_NOT_STATED = "not stated by your organisation"


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing a person is told: a stable `key` (widget names, tests), a label, the text."""

    key: str
    label: str
    text: str


def _keep(days: int | None) -> str:
    if days is None:
        return "kept on this computer until you delete it"
    if days == 0:
        return "removed from this computer right after upload"
    return f"kept on this computer for {days} days after upload"


def _uploads(policy: Policy) -> list[Fact]:
    if policy.collector is None:
        return [
            # Short: the built-in policy's purpose says it in full already.
            Fact("uploads", "What leaves this computer", "Nothing."),
            Fact("recipients", "Who receives it", "No one."),
        ]
    days = "day" if policy.hold_days == 1 else "days"
    return [
        Fact(
            "uploads",
            "What leaves this computer",
            "Sessions you approve, and those you leave unreviewed past the hold period, "
            f"are uploaded to {policy.collector}, encrypted so that only your organisation "
            f"can read them. {_timing(policy)}",
        ),
        Fact(
            "hold_period",
            "Time to review",
            f"Each session waits {policy.hold_days} {days} for your review before it may "
            f"leave (you may choose from {policy.hold_days_min} to {policy.hold_days_max}).",
        ),
        Fact("withheld", "Personal data you type", _withheld(policy)),
        Fact("local_copy", "Your copy after upload", _keep(policy.keep_uploaded_days) + "."),
    ]


def _timing(policy: Policy) -> str:
    """How the keys' timing leaves: how a person types identifies them."""
    evened = (
        "The timing of your keys is evened out before it leaves, because how you type "
        "can identify you"
    )
    if Category.TYPING_RHYTHM in policy.categories:
        return evened + ", unless you agree to 'Typing rhythm'."
    return evened + "."


def _withheld(policy: Policy) -> str:
    kinds = [PII_WORDS.get(c.value, c.value) for c in policy.withheld]
    if not kinds:
        return (
            "Nothing you type is removed before upload on its own: remove what should "
            "not leave when you review a session."
        )
    return (
        f"What the detectors find of these kinds is removed from what is uploaded: "
        f"{', '.join(kinds)}. Your own copy keeps it for your review, and you can "
        "release a detection that is not personal data."
    )


def facts(policy: Policy) -> list[Fact]:
    """What a person must know before agreeing to `policy`, in reading order."""
    notice = policy.notice
    if notice is None:
        missing = []
        if policy.collector is not None:
            missing.append(
                Fact(
                    "notice",
                    "Missing from this policy",
                    "This policy does not say who is responsible for your data, why it is "
                    "collected, who receives it or how long it is kept; ask your "
                    "organisation before you agree.",
                )
            )
        return missing + _uploads(policy)
    if notice.no_performance_evaluation:
        performance = (
            "Your organisation commits that this data is not used to evaluate your "
            "individual performance"
        )
        if notice.works_agreement is not None:
            performance += f" (works agreement: {notice.works_agreement})"
        performance += "."
    else:
        performance = (
            "Your organisation makes no commitment that this data is not used to "
            "evaluate your performance."
        )
    shown = [
        Fact(
            "controller",
            "Responsible for your data",
            f"{notice.controller_name} ({notice.controller_contact})",
        ),
        Fact("dpo", "Data protection officer", notice.dpo or _NOT_STATED),
        Fact("purposes", "Why it is collected", "; ".join(notice.purposes)),
        Fact("legal_basis", "Legal basis", notice.legal_basis or _NOT_STATED),
        Fact("recipients", "Who receives it", "; ".join(notice.recipients) or _NOT_STATED),
        Fact(
            "processing_location",
            "Where it is processed",
            notice.processing_location or _NOT_STATED,
        ),
        Fact("retention", "How long your organisation keeps it", notice.retention or _NOT_STATED),
        Fact("performance", "Evaluating you", performance),
    ]
    return shown + [f for f in _uploads(policy) if f.key != "recipients"]


def notice_json(policy: Policy) -> dict[str, Any]:
    """The notice for `--json` readers: the organisation's words (null when the
    policy has none) and what leaves, from the policy's own fields."""
    return {
        "notice": None if policy.notice is None else policy.notice.as_dict(),
        "uploads": {
            "leaves_computer": policy.collector is not None,
            "collector": policy.collector,
            "hold_days": policy.hold_days,
            "keep_uploaded_days": policy.keep_uploaded_days,
        },
    }
