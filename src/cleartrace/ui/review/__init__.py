"""The review window: a session's timeline and text, redaction with a dry run
shown before anything goes, and approve, hold or delete."""

from cleartrace.ui.review.confirm import ConfirmDialog
from cleartrace.ui.review.sessions import SessionTable
from cleartrace.ui.review.text_view import PII_COLOURS, TextPane
from cleartrace.ui.review.timeline import CATEGORY_COLOURS, Timeline, TimelineData
from cleartrace.ui.review.window import ReviewWindow

__all__ = [
    "CATEGORY_COLOURS",
    "PII_COLOURS",
    "ConfirmDialog",
    "ReviewWindow",
    "SessionTable",
    "TextPane",
    "Timeline",
    "TimelineData",
]
