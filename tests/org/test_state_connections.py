"""A PostgreSQL state's connections when the server misbehaves: it stops answering, it
drops them, a lock is held too long.

Each state is opened as the collector opens it, on the session's cluster (or on
a socket that accepts and never answers), with the state's timeouts set to a
second or two for the test (their defaults are 10 s and 30 s).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from cleartrace.errors import StoreError
from cleartrace.org import registry_pg
from cleartrace.org.state import open_state
from tests.support.postgres import Postgres


def test_a_state_whose_server_stops_answering_fails_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that takes the connection and never answers (a failed-over host
    # whose address now drops packets, a stuck proxy): each worker thread that
    # waits on it forever is one fewer for every other upload.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    outcome: list[BaseException | None] = []
    monkeypatch.setitem(registry_pg.CONNECT_DEFAULTS, "connect_timeout", "2")

    def opening() -> None:
        url = f"postgresql://ct@127.0.0.1:{port}/fleet?sslmode=disable"
        try:
            open_state(tmp_path / "data", url).close()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=opening, daemon=True)
    try:
        thread.start()
        thread.join(timeout=30)
    finally:
        listener.close()
    assert outcome, "opening the state is still waiting on a server that never answers"
    assert isinstance(outcome[0], StoreError)
    assert "127.0.0.1" in str(outcome[0])


def test_a_head_lock_held_too_long_fails_the_waiter_with_a_store_error(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_database()
    first = open_state(tmp_path / "a", url)
    monkeypatch.setattr(registry_pg, "STATEMENT_TIMEOUT", "1s")
    second = open_state(tmp_path / "b", url)
    device = "sha256:" + "e" * 64
    try:
        with (
            first.head_lock(device),
            pytest.raises(StoreError) as failed,
            second.head_lock(device),
        ):
            pass  # not reached: the wait ends at the statement timeout
        assert "statement_timeout" in str(failed.value)
        with second.head_lock(device):
            pass  # free again once its holder let go
    finally:
        first.close()
        second.close()
