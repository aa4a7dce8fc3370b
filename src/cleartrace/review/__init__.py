"""Review of recorded sessions: the text typed, the personal data in it, redaction,
approval and the person's own export. The tray's review window calls exactly
these functions, as the CLI does."""

from __future__ import annotations

from cleartrace.review.activity import MinuteActivity, activity_per_minute
from cleartrace.review.pii import Finding, PiiCategory, detect
from cleartrace.review.text import PLACEHOLDER, Mark, MarkKind, Stream, reconstruct

__all__ = [
    "PLACEHOLDER",
    "Finding",
    "Mark",
    "MarkKind",
    "MinuteActivity",
    "PiiCategory",
    "Stream",
    "activity_per_minute",
    "detect",
    "reconstruct",
]
