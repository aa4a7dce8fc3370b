"""The collector's limits, importable without the server's libraries: the
largest bundle it takes, the per-device upload rate (a token bucket), how
much request body it holds at once, for how long and at what rate, how long a
connection may take to say what it wants, and enrolment rates."""

from __future__ import annotations

from dataclasses import dataclass

from cleartrace.durations import parse_duration
from cleartrace.errors import UsageError

__all__ = [
    "DEFAULT_BODY_MEMORY_MB",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_ENROLL_RATE",
    "DEFAULT_ENROLL_RATE_TOTAL",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BUNDLE_MB",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MIN_BODY_RATE_KIB",
    "DEFAULT_RATE",
    "Rate",
    "TokenBucket",
]

#: Default largest bundle accepted: a long day of input at full detail fits well within it.
DEFAULT_MAX_BUNDLE_MB = 64


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` bundles per `period` seconds per device, in bursts of up to `count`."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'N/PERIOD': 120/m, 10/s, 1000/1h, 5/30s.

        Raises:
            UsageError: not of that form, or not positive.
        """
        count, sep, period = text.partition("/")
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise UsageError(f"'{text}' is not a rate; write it as N/PERIOD, e.g. 120/m or 10/s")
        period = period.strip()
        if period.isalpha():  # "m" means "1m"
            period = "1" + period
        return cls(int(count), parse_duration(period))


#: Default per-device rate: a device uploads a handful of bundles a day; retries fit easily.
DEFAULT_RATE = Rate(120, 60.0)
#: Default memory for request bodies held at once: four of the largest bundles.
DEFAULT_BODY_MEMORY_MB = 4 * DEFAULT_MAX_BUNDLE_MB
#: Default seconds a request's body may take to arrive: 64 MiB at 1 Mbit/s takes
#: some nine minutes, so a slower sender retries with its queue of smaller bundles.
DEFAULT_BODY_TIMEOUT = 600.0
#: Default enrolment attempts per client address: a floor of laptops behind one
#: NAT enrolling on the same morning, not a token-guessing loop.
DEFAULT_ENROLL_RATE = Rate(60, 60.0)
#: Default enrolment attempts overall: each attempt checks a signature and scans
#: the unused tokens, so this bounds what guessing costs the collector.
DEFAULT_ENROLL_RATE_TOTAL = Rate(600, 60.0)
#: Default connections (and requests in flight) served at once; beyond, uvicorn answers 503.
DEFAULT_MAX_CONNECTIONS = 1000
#: Default seconds a new connection has to send its request line and headers, and a
#: bundle's body to deliver its header: a device sends a few hundred bytes of each at
#: once, so only an idle or trickling connection needs longer.
DEFAULT_HEADER_TIMEOUT = 15.0
#: Default KiB a second a body must keep up with once the header timeout has passed
#: (a grace for TCP slow start and a stall): 32 kbit/s, far below any link a device
#: uploads over, far above a client trickling to hold a slot.
DEFAULT_MIN_BODY_RATE_KIB = 4.0


class TokenBucket:
    """`rate.count` tokens, refilled continuously at count/period per second."""

    def __init__(self, rate: Rate, now: float) -> None:
        self._capacity = float(rate.count)
        self._per_second = rate.count / rate.period
        self._tokens = self._capacity
        self._updated = now

    def take(self, now: float) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._per_second
