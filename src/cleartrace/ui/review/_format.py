"""How the review window words times, durations and counts (local time, plain words)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

__all__ = ["clock", "counts_text", "day_and_clock", "duration", "short_id"]

_SECOND_NS = 10**9
_WEEK_S = 6 * 86_400

# The store counts by consent category; the person reads plainer words, in this order.
_COUNT_NAMES = {
    "keys": "keys",
    "mouse_move": "moves",
    "clicks": "clicks",
    "scroll": "scrolls",
    "app_focus": "window changes",
    "window_titles": "titles",
    "excluded_intervals": "excluded periods",
}
_ORDER = {name: rank for rank, name in enumerate(_COUNT_NAMES)}


def _local(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / _SECOND_NS).astimezone()


def clock(ns: int, *, seconds: bool = False) -> str:
    """The local time of day: "10:15" (or "10:15:42")."""
    return _local(ns).strftime("%H:%M:%S" if seconds else "%H:%M")


def day_and_clock(ns: int, now_ns: int | None = None) -> str:
    """A day and time: "Tue 10:15" within six days of now, else "Tue 12 Mar 10:15"."""
    when = _local(ns)
    now = datetime.now().astimezone() if now_ns is None else _local(now_ns)
    if abs((when - now).total_seconds()) < _WEEK_S:
        return when.strftime("%a %H:%M")
    return when.strftime("%a %d %b %H:%M")


def duration(ns: int) -> str:
    """A length of time: "42 s", "7 min", "1 h 05 min"."""
    seconds = max(0, ns // _SECOND_NS)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def counts_text(counts: Mapping[str, int], *, empty: str = "nothing") -> str:
    """Counts in plain words and a fixed order, like "keys 12 · clicks 2"; zeros left out."""
    ordered = sorted(counts.items(), key=lambda item: (_ORDER.get(item[0], len(_ORDER)), item[0]))
    parts = [f"{_COUNT_NAMES.get(name, name)} {n}" for name, n in ordered if n]
    return " · ".join(parts) or empty


def short_id(session_id: str) -> str:
    return session_id[:8]
