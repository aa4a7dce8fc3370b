"""A PostgreSQL state's connections when the server misbehaves: it stops answering, it
drops them (the pool's idle ones, or a head lock's while held), a lock is held too long.

Each state is opened as the collector opens it, on the session's cluster (or on
a socket that accepts and never answers), with the state's timeouts set to a
second or two for the test (their defaults are 10 s and 30 s).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg
import pytest

from cleartrace.consent.records import GENESIS
from cleartrace.errors import StoreError
from cleartrace.org import registry_pg_pool
from cleartrace.org.devices import Head
from cleartrace.org.state import open_state
from tests.org.test_state import enrolled
from tests.support.postgres import COLLECTOR_SESSIONS, Postgres, collector_connections


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
    monkeypatch.setitem(registry_pg_pool.CONNECT_DEFAULTS, "connect_timeout", "2")

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
    monkeypatch.setattr(registry_pg_pool, "STATEMENT_TIMEOUT", "1s")
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


def _end_sessions(url: str, where: str) -> None:
    """End the state's server sessions `where` says (pg_terminate_backend), as a
    server restart, a failover or an idle timeout does."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM {where}")  # noqa: S608 (fixed text)


def test_a_state_answers_again_once_its_server_dropped_the_connections(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.new_database()
    state = open_state(tmp_path, url)
    ours = COLLECTOR_SESSIONS
    try:
        device = enrolled(state)
        _end_sessions(url, ours)
        assert state.device(device) is not None  # a read
        _end_sessions(url, ours)
        assert len(state.issue_tokens(1)) == 1  # a transaction
        _end_sessions(url, ours)
        with state.head_lock(device):  # a head lock
            pass
    finally:
        state.close()


def test_an_accept_whose_head_lock_session_ended_commits_nothing(
    tmp_path: Path, postgres: Postgres
) -> None:
    # The lock's connection ends (server restart, network, pg_terminate_backend) while
    # its holder is inside the block: the server hands the lock to the next process,
    # so the holder's accept must fail rather than move the head (and have its head
    # file written over a newer one).
    url = postgres.new_database()
    first, second = open_state(tmp_path / "a", url), open_state(tmp_path / "b", url)
    try:
        device = enrolled(first)
        with first.head_lock(device):
            _end_sessions(url, "pg_locks WHERE locktype = 'advisory' AND granted")
            with pytest.raises(StoreError):
                first.accept(
                    name="a" * 64, device=device, size=1, base=Head(0, GENESIS),
                    head=Head(1, "1" * 64), when="2026-12-06T00:00:00Z",
                )  # fmt: skip
            with second.head_lock(device):
                pass  # the server let the lock go with its session
        found = second.device(device)
        assert found is not None
        assert found.head == Head(0, GENESIS)
        assert second.bundle_count() == 0
        with first.head_lock(device):  # and the first takes it again on a fresh connection
            first.accept(
                name="a" * 64, device=device, size=1, base=Head(0, GENESIS),
                head=Head(1, "1" * 64), when="2026-12-06T00:00:00Z",
            )  # fmt: skip
    finally:
        first.close()
        second.close()


def test_a_thread_holding_a_head_lock_uses_one_connection(
    tmp_path: Path, postgres: Postgres
) -> None:
    # docs/cli.md: a process holds one connection per worker thread at most, so a
    # fleet's max_connections can be sized from its processes' thread counts.
    url = postgres.new_database()
    state = open_state(tmp_path, url)
    try:
        device = enrolled(state)
        with state.head_lock(device):
            assert state.device(device) is not None
            assert state.stored("c" * 64) is None
            state.accept(
                name="c" * 64, device=device, size=1, base=Head(0, GENESIS),
                head=Head(1, "1" * 64), when="2026-12-06T00:00:00Z",
            )  # fmt: skip
            held = collector_connections(url)
    finally:
        state.close()
    assert held == 1
