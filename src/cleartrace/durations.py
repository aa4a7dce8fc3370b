"""Human durations and instants on the command line: ``15m``, ``1h30m``, ``10:15``, ``+5m``."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from cleartrace.errors import UsageError

__all__ = ["parse_duration", "parse_instant"]

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `text`, which names its unit (``90s``, ``15m``, ``1h30m``).

    A bare number is refused rather than read as seconds: ``pause --for 15``
    most likely meant minutes, and a pause or a forgetting 60 times too short
    is a surprise the person does not see.

    Raises:
        UsageError: the text is not a positive duration with a unit.
    """
    text = text.strip().lower()
    if text.startswith("-"):
        raise UsageError(
            f"a duration cannot be negative ('{text}'); write how long, like {text[1:] or '15m'}"
        )
    try:
        float(text)
    except ValueError:
        pass
    else:
        raise UsageError(
            f"{text} needs a unit: write {text}s, {text}m or {text}h (seconds, minutes, hours)"
        )
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"'{text}' is not a duration; write it like 90s, 15m, 1h or 1h30m")
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"'{text}' is not a positive duration")
    return seconds


_CLOCK = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


def parse_instant(text: str, start: datetime) -> datetime:
    """An instant given relative to a session that began at `start` (aware).

    ``+5m`` is five minutes after the start; ``10:15`` or ``10:15:30`` a time
    of day on the start's local date; an ISO 8601 date and time is taken as
    is (local time when it names no zone).

    Raises:
        UsageError: `text` is none of these.
    """
    text = text.strip()
    if text.startswith("+"):
        return start + timedelta(seconds=parse_duration(text[1:]))
    local = start.astimezone()
    if _CLOCK.fullmatch(text):
        try:
            clock = time.fromisoformat(text if text.count(":") == 2 else text + ":00")
        except ValueError:
            raise UsageError(f"'{text}' is not a time of day") from None
        return datetime.combine(local.date(), clock, local.tzinfo)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"'{text}' is not a time; write it like 10:15, 10:15:30, +5m "
            "(after the session start) or 2026-12-02T10:15:00Z"
        ) from None
    return when if when.tzinfo is not None else when.astimezone()
