"""Real homes for the action tests, and a stand-in recorder answering on the
control socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleartrace.categories import Category
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.state import give
from cleartrace.control import ControlServer
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
