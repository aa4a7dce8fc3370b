"""Review probes of the collector's shared (PostgreSQL) state: what they show fails today.

Each test is a behaviour the change promises (docs/cli.md, "Running a fleet",
and org/state.py) checked against the real components: a state opened as the
collector opens it, the real `cleartrace` CLI, the session's PostgreSQL cluster.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.org.state import CollectorState, open_state
from tests.support.postgres import Postgres

SECRET = "hunter2-not-for-logs"  # noqa: S105 (a canary, searched for)


def _enrolled(state: CollectorState) -> str:
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return state.enroll(state.issue_tokens(1)[0], key).device


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
