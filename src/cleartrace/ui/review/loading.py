"""Loading a session for the review window, on the UI's worker thread."""

from __future__ import annotations

from dataclasses import dataclass

from cleartrace.actions.sessions import SessionReview
from cleartrace.service import Service
from cleartrace.ui.review.timeline import TimelineData

__all__ = ["Loaded", "load"]


@dataclass(frozen=True, slots=True)
class Loaded:
    review: SessionReview
    timeline: TimelineData


def load(service: Service, session_id: str) -> Loaded:
    """On the worker thread: the review and its timeline.

    The window needs no single event (the text, findings and per-minute
    counts are all it shows); the review folds them as they are decoded and
    keeps none.
    """
    review = service.review(session_id)
    return Loaded(review, TimelineData.of(review))
