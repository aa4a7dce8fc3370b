"""What the collector lets in before it holds a request body.

A body is held in memory until it is checked, so who may send one, how many
at once and for how long are decided first: bodies are read against a
deadline and a minimum arrival rate (`RequestBody`), and a bundle's body only
after the request is signed by an enrolled device (`upload.upload_auth`),
with one body per device at a time and all bodies together within a memory
budget (`BodyBudget`). Enrolment attempts are rate-limited per client network
and overall (`EnrolmentRates`) before their body is read.

All of it runs on the event loop, so plain counters and dicts need no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request

from cleartrace.errors import BodyTooSlow, NotAdmitted
from cleartrace.org.limits import Rate, TokenBucket

__all__ = [
    "BodyBudget",
    "EnrolmentRates",
    "RequestBody",
    "address_block",
]

#: Client networks whose enrolment rate is remembered; the oldest are forgotten
#: first, so many networks cannot grow memory (the overall rate still holds).
_REMEMBERED_ADDRESSES = 4096


class RequestBody:
    """A request's body, read in steps, all of it by `deadline` (event-loop time).

    After `grace` seconds the bytes received must keep up with `min_rate`
    bytes a second, so a client trickling its body cannot hold what was
    reserved for it (a device's one upload slot, memory) until the deadline.
    The body is received into one buffer of its limit's size, allocated when
    the first bytes arrive, so it is never held twice (as joining received
    pieces would) and what the budget reserved is what it takes.

    `complete` says whether the client sent all of it; a refusal before then
    closes the connection, so a client cannot keep sending what is not read.
    """

    def __init__(
        self, request: Request, deadline: float, *, min_rate: float = 0.0, grace: float = 0.0
    ) -> None:
        self._chunks = request.stream()
        self._deadline = deadline
        self._min_rate = min_rate
        self._start = asyncio.get_running_loop().time()
        self._grace = grace
        self._buffer = bytearray()
        self.received = 0
        self.complete = False

    def _until(self, deadline: float | None) -> tuple[float, str]:
        """When waiting for the next bytes ends, and which rule ends it."""
        until, rule = self._deadline, "body-timeout"
        if deadline is not None and deadline < until:
            until, rule = deadline, "header-timeout"
        if self._min_rate > 0:
            behind = self._start + self._grace + self.received / self._min_rate
            if behind < until:
                until, rule = behind, "body-too-slow"
        return until, rule

    async def _receive(self, at_least: int, limit: int, deadline: float | None) -> None:
        while self.received < at_least and not self.complete:
            until, rule = self._until(deadline)
            try:
                async with asyncio.timeout_at(until):
                    chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self.complete = True
                break
            except TimeoutError:
                raise BodyTooSlow(rule) from None
            end = self.received + len(chunk)
            if end > limit:
                raise ValueError("body longer than its limit")
            if not self._buffer:
                self._buffer = bytearray(limit)
            self._buffer[self.received : end] = chunk
            self.received = end

    async def peek(self, at_least: int, limit: int, deadline: float | None = None) -> bytes:
        """A copy of the first `at_least` bytes (fewer if the body is shorter), once
        they arrived; for the bundle header, by `deadline` if given.

        Raises:
            BodyTooSlow: a deadline passed or the rate fell behind first.
            ClientDisconnect: the client went away.
            ValueError: more than `limit` bytes arrived.
        """
        await self._receive(at_least, limit, deadline)
        return bytes(self._buffer[: min(at_least, self.received)])

    async def read(self, limit: int) -> bytearray:
        """The whole body (its buffer, not a copy), at most `limit` bytes.

        Raises:
            BodyTooSlow: the deadline passed or the rate fell behind first.
            ClientDisconnect: the client went away.
            ValueError: more than `limit` bytes arrived.
        """
        await self._receive(limit + 1, limit, None)
        del self._buffer[self.received :]  # shrinks in place
        return self._buffer

    async def close(self) -> None:
        self._buffer = bytearray()
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


def address_block(address: str) -> str:
    """The network a client address is counted in: its IPv6 /64, or the IPv4 address.

    One IPv6 host is routinely given a whole /64 and picks addresses from it
    at will, so counting IPv6 addresses one by one would give one attacker
    2**64 allowances; an IPv4 address (a NAT's, at most) is the smallest unit
    an attacker cannot multiply cheaply. IPv4-mapped IPv6 counts as IPv4.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket): one bucket per name
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class EnrolmentRates:
    """Enrolment attempts per client network (`address_block`) and overall, as token buckets."""

    def __init__(self, per_address: Rate, overall: Rate, clock: Callable[[], float]) -> None:
        self._per_address = per_address
        self._clock = clock
        self._overall = TokenBucket(overall, clock())
        self._addresses: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> None:
        """Count one attempt from `address` (from its network, see `address_block`).

        Raises:
            NotAdmitted: "rate-limited", with the seconds until one would be allowed.
        """
        address = address_block(address)
        now = self._clock()
        bucket = self._addresses.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self._per_address, now)
        self._addresses[address] = bucket
        while len(self._addresses) > _REMEMBERED_ADDRESSES:
            self._addresses.popitem(last=False)
        _admit(bucket.take(now))

    def take_overall(self) -> None:
        """Count one well-formed, self-signed attempt against the overall rate.

        Only these cost the collector (a signature check, a scan of the unused
        tokens), so a malformed request does not use up what real devices need.

        Raises:
            NotAdmitted: "rate-limited", with the seconds until one would be allowed.
        """
        _admit(self._overall.take(self._clock()))


def _admit(wait: float) -> None:
    if wait > 0:
        raise NotAdmitted("rate-limited", max(1, math.ceil(wait)))
