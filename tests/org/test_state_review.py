"""Review probes of the collector's shared (PostgreSQL) state: what they show fails today.

Each test is a behaviour the change promises (docs/cli.md, "Running a fleet",
and org/state.py) checked against the real components: a state opened as the
collector opens it, the real `cleartrace` CLI, the session's PostgreSQL cluster.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import StoreError
from cleartrace.org.state import CollectorState, open_state
from tests.support.postgres import Postgres
from tests.support.waiting import wait_for

SECRET = "hunter2-not-for-logs"  # noqa: S105 (a canary, searched for)


def _enrolled(state: CollectorState) -> str:
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return state.enroll(state.issue_tokens(1)[0], key).device


def test_a_state_answers_again_once_its_server_dropped_the_connections(
    tmp_path: Path, postgres: Postgres
) -> None:
    # A PostgreSQL restart, failover or idle timeout ends the pool's connections;
    # the server is back at once, and the next call must work.
    url = postgres.new_database()
    state = open_state(tmp_path, url)
    try:
        device = _enrolled(state)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'cleartrace'"
            )
        assert state.device(device) is not None
    finally:
        state.close()


def test_a_head_lock_is_not_given_to_another_while_its_holder_runs(
    tmp_path: Path, postgres: Postgres
) -> None:
    # The lock's connection ends (server restart, network, pg_terminate_backend)
    # while its holder is still storing and writing the head file: the server
    # drops the lock, and another process takes it while the first still acts.
    url = postgres.new_database()
    first, second = open_state(tmp_path / "a", url), open_state(tmp_path / "b", url)
    device = "sha256:" + "d" * 64
    got = threading.Event()

    def take() -> None:
        with second.head_lock(device):
            got.set()

    def waiting() -> bool:
        with psycopg.connect(url) as conn:
            ((n,),) = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchall()
        return bool(n == 1)

    thread = threading.Thread(target=take)
    taken_meanwhile = False
    try:
        with contextlib.suppress(StoreError), first.head_lock(device):
            thread.start()
            wait_for(waiting, what="the second handle waiting for the device's lock")
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            # The holder is still inside its block (storing, writing the head file).
            taken_meanwhile = got.wait(2)
    finally:
        thread.join(timeout=30)
        first.close()
        second.close()
    assert not taken_meanwhile, "another process got the head lock while it was held"


def test_a_collector_role_with_only_data_privileges_serves_existing_tables(
    tmp_path: Path, postgres: Postgres
) -> None:
    # The usual deployment: the DBA (or the first start, as owner) made the tables;
    # the collectors' own role may read and write rows but not create anything.
    url = postgres.new_database()
    open_state(tmp_path / "owner", url).close()
    role = "ct_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    app_url = url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    state = open_state(tmp_path / "app", app_url)
    state.close()
