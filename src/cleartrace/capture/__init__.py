"""Input capture: backends behind one protocol, and the writer thread."""

from __future__ import annotations

from cleartrace.capture.base import Backend, Sink, StampedEvent
from cleartrace.capture.display import check_display, display_support
from cleartrace.capture.pipeline import MoveCoalescer, Writer
from cleartrace.capture.select import backend
from cleartrace.capture.timeline import FocusState, FocusTimeline

__all__ = [
    "Backend",
    "FocusState",
    "FocusTimeline",
    "MoveCoalescer",
    "Sink",
    "StampedEvent",
    "Writer",
    "backend",
    "check_display",
    "display_support",
]
