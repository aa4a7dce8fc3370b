"""Human durations on the command line: ``90s``, ``15m``, ``1h``, ``1h30m``."""

from __future__ import annotations

import re

from cleartrace.errors import UsageError

__all__ = ["parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number means seconds.

    Raises:
        UsageError: the text is not a positive duration.
    """
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise UsageError(
                f"'{text}' is not a duration; write it like 90s, 15m, 1h or 1h30m"
            ) from None
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"'{text}' is not a positive duration")
    return seconds
