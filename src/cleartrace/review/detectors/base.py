"""What a detector reports: a category and a span, never the text itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cleartrace.categories import PiiCategory

__all__ = ["Finding", "PiiCategory", "Scan"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One probable piece of personal data or secret in a text.

    It holds only offsets into the text it was found in, so printing,
    logging or raising with a finding can never leak what was typed.
    """

    category: PiiCategory
    start: int
    end: int
    confidence: float
    detector: str

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"finding span {self.start}..{self.end} is empty or negative")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"finding confidence {self.confidence} is outside 0..1")


#: A detector scans one text and yields what it finds, in any order.
Scan = Callable[[str], Iterator[Finding]]
