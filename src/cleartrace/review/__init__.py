"""Review of recorded sessions: text reconstruction."""

from __future__ import annotations

from cleartrace.review.text import Stream, reconstruct

__all__ = ["Stream", "reconstruct"]
