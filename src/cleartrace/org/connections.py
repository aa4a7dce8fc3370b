"""A deadline for each request's line and headers, which uvicorn does not set.

uvicorn closes an idle keep-alive connection only after a response, and
limits how many connections it serves (beyond, it answers 503): a client that
opens connections and sends nothing, or a byte at a time, holds a place
until it leaves. A thousand such sockets would shut everyone else out. So
from the moment a connection opens, and again whenever it starts a new
request, it has `timeout` seconds to complete the request's head; otherwise
it is closed. The body has its own deadlines (`org.intake`).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["head_deadline_protocol"]

log = logging.getLogger(__name__)


class _HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is late."""

    head_timeout: float = 15.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is complete; the body has its own deadlines
        elif self._head_timer is None:
            self._arm()  # the next request on a kept-alive connection has begun

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Pipelined requests may have started already; otherwise uvicorn's keep-alive
        # timer covers the idle time until the next request's first bytes.
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("closed a connection that sent no request head in %g s", self.head_timeout)
            self.transport.close()


def head_deadline_protocol(timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with a `timeout`-second deadline for request heads."""
    return type("HeadDeadlineProtocol", (_HeadDeadline,), {"head_timeout": timeout})
