"""What a detector reports: a category and a span, never the text itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cleartrace.categories import PiiCategory

__all__ = ["Finding", "PiiCategory", "Scan", "is_reference"]


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

# Words after which a number is a reference, in the languages the cues of
# the password detector cover too.
_REFERENCE = re.compile(
    r"(?:\bno\.|\b(?:order|invoice|ticket|ref|reference|nr|bestellung|rechnung|auftrag|commande"
    r"|facture|pedido|factura|ordine|fattura|bestelling|factuur|zam[óo]wienie|faktura)\.?"
    r"|#)\s*[:.]?\s*$",
    re.IGNORECASE,
)


def is_reference(text: str, start: int) -> bool:
    """Tell whether the number at `start` follows an order, invoice or reference word."""
    return _REFERENCE.search(text[max(0, start - 24) : start]) is not None
