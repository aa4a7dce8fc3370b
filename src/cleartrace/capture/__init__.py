"""Input capture: backends behind one protocol, and the writer thread."""

from __future__ import annotations

from cleartrace.capture.base import Backend, FocusHandler, Sink
from cleartrace.capture.display import check_display, display_support
from cleartrace.capture.pipeline import MoveCoalescer, Writer
from cleartrace.capture.select import backend

__all__ = [
    "Backend",
    "FocusHandler",
    "MoveCoalescer",
    "Sink",
    "Writer",
    "backend",
    "check_display",
    "display_support",
]
