"""What the collector lets in before it holds a request body.

A body is held in memory until it is checked, so who may send one, how many
at once and for how long are decided first: bodies are read against a
deadline (`RequestBody`), and a bundle's body only after its header names an
enrolled device, with one body per device at a time and all bodies together
within a memory budget (`BodyBudget`). Enrolment attempts are rate-limited
per client address and overall (`EnrolmentRates`) before their body is read.

All of it runs on the event loop, so plain counters and dicts need no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request

from cleartrace.org.limits import Rate, TokenBucket

__all__ = ["BodyBudget", "BodyTooSlow", "EnrolmentRates", "NotAdmitted", "RequestBody"]

#: Client addresses whose enrolment rate is remembered; the oldest are forgotten
#: first, so many addresses cannot grow memory (the overall rate still holds).
_REMEMBERED_ADDRESSES = 4096


class BodyTooSlow(Exception):
    """The body did not arrive before the request's deadline."""


class NotAdmitted(Exception):
    """Not admitted: `reason` is a short id, `retry_after` whole seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RequestBody:
    """A request's body, read in steps, all of it by `deadline` (event-loop time).

    `complete` says whether the client sent all of it; a refusal before then
    closes the connection, so a client cannot keep sending what is not read.
    """

    def __init__(self, request: Request, deadline: float) -> None:
        self._chunks = request.stream()
        self._deadline = deadline
        self._parts: list[bytes] = []
        self.received = 0
        self.complete = False

    async def read(self, at_least: int, limit: int) -> bytes:
        """Everything received so far, once at least `at_least` bytes (or all) arrived.

        Raises:
            BodyTooSlow: the deadline passed first.
            ClientDisconnect: the client went away.
            ValueError: more than `limit` bytes arrived.
        """
        try:
            async with asyncio.timeout_at(self._deadline):
                while self.received < at_least and not self.complete:
                    try:
                        chunk = await anext(self._chunks)
                    except StopAsyncIteration:
                        self.complete = True
                        break
                    self.received += len(chunk)
                    if self.received > limit:
                        raise ValueError("body longer than its limit")
                    self._parts.append(chunk)
        except TimeoutError:
            raise BodyTooSlow from None
        if len(self._parts) > 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0] if self._parts else b""

    async def close(self) -> None:
        self._parts.clear()
        await self._chunks.aclose()


class BodyBudget:
    """Bounds the bodies held at once: their total bytes, and one per device."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._devices: set[str] = set()

    @contextlib.asynccontextmanager
    async def hold(self, device: str, size: int) -> AsyncIterator[None]:
        """Reserve `size` bytes for `device`'s body while the block runs.

        Raises:
            NotAdmitted: "upload-in-progress" when the device is already sending a
                body, "busy" when the budget is spent.
        """
        if device in self._devices:
            raise NotAdmitted("upload-in-progress", 10)
        if self.held + size > self.limit:
            raise NotAdmitted("busy", 5)
        self.held += size
        self._devices.add(device)
        try:
            yield
        finally:
            self.held -= size
            self._devices.discard(device)


class EnrolmentRates:
    """Enrolment attempts per client address and overall, as token buckets."""

    def __init__(self, per_address: Rate, overall: Rate, clock: Callable[[], float]) -> None:
        self._per_address = per_address
        self._clock = clock
        self._overall = TokenBucket(overall, clock())
        self._addresses: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> None:
        """Count one attempt from `address`.

        Raises:
            NotAdmitted: "rate-limited", with the seconds until one would be allowed.
        """
        now = self._clock()
        bucket = self._addresses.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self._per_address, now)
        self._addresses[address] = bucket
        while len(self._addresses) > _REMEMBERED_ADDRESSES:
            self._addresses.popitem(last=False)
        wait = bucket.take(now) or self._overall.take(now)
        if wait > 0:
            raise NotAdmitted("rate-limited", max(1, math.ceil(wait)))
