"""Loading a session for the review window, on the UI's worker thread."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cleartrace.actions.sessions import SessionReview
from cleartrace.service import Service
from cleartrace.ui.review.timeline import TimelineData

__all__ = ["Loaded", "load"]


@dataclass(frozen=True, slots=True)
class Loaded:
    review: SessionReview  # without its events
    timeline: TimelineData


def load(service: Service, session_id: str) -> Loaded:
    """On the worker thread: the review, its timeline, and the events let go there.

    The window needs no single event (the text, findings and per-minute
    counts are all it shows), and freeing 1.5 M of them takes a while; the
    worker does it, not the GUI thread.
    """
    review = service.review(session_id)
    return Loaded(replace(review, events=[]), TimelineData.of(review))
