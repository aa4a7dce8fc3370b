"""Real homes for the action tests: a store with closed sessions, and a stand-in
recorder answering on the control socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleartrace.categories import Category
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.state import give
from cleartrace.control import ControlServer
from cleartrace.events import Kind, RawEvent
from cleartrace.home import Home
from cleartrace.paths import Paths


@pytest.fixture
def home(private_home: Paths) -> Iterator[Home]:
    """The private home, created, with consent to keys and application focus."""
    opened = Home.open(private_home, create=True)
    give(opened.ledger, frozenset({Category.KEYS, Category.APP_FOCUS}), DEFAULT_POLICY)
    try:
        yield opened
    finally:
        opened.close()


def closed_session(home: Home, n_keys: int = 20) -> str:
    """A closed session of `n_keys` presses and releases, recorded just now."""
    wall, mono = time.time_ns(), time.monotonic_ns()
    handle = home.store.begin_session(wall, mono)
    home.ledger.append("session.started", session=handle.id)
    events: list[RawEvent] = [(mono + 1_000, int(Kind.FOCUS), 0, 0, 0, 0, ("xterm", "notes"))]
    for i in range(n_keys):
        events.append((mono + 2_000 + i * 2_000, int(Kind.KEY_DOWN), 0x61, 0, 0, 0, None))
        events.append((mono + 3_000 + i * 2_000, int(Kind.KEY_UP), 0x61, 0, 0, 0, None))
    home.store.append_chunk(handle, events)
    home.store.end_session(handle, time.time_ns())
    home.ledger.append("session.ended", session=handle.id)
    return handle.id


@pytest.fixture
def recorder_socket(
    private_home: Paths,
) -> Iterator[Callable[[Callable[[dict[str, Any]], dict[str, Any]]], list[dict[str, Any]]]]:
    """Serve a handler on the home's control socket, as a recorder in another
    process would; returns the requests it received."""
    servers: list[ControlServer] = []

    def serve(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []

        def answer(req: dict[str, Any]) -> dict[str, Any]:
            seen.append(req)
            return handler(req)

        servers.append(ControlServer(private_home.socket, answer))
        return seen

    yield serve
    for server in servers:
        server.close()
