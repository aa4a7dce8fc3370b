"""Review: the collector's org ledger read for the audit (`read_org_ledger`)
behaves alike on both states. A row that is not JSON (a damaged or tampered
registry) is given as an empty record on SQLite, which the chain walk then
refuses at its place; on PostgreSQL it must not crash the audit instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from cleartrace.org.registry_db import DB_NAME, read_org_ledger
from cleartrace.org.state import open_state
from tests.support.postgres import Postgres


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_ledger_row_that_is_not_json_reads_as_an_empty_record_on_both_states(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    url = None
    if backend == "postgresql":
        cluster: Postgres = request.getfixturevalue("postgres")
        url = cluster.new_database()
    state = open_state(data, url)
    try:
        state.issue_tokens(1)
        state.issue_tokens(1)
    finally:
        state.close()
    tampered = (
        "UPDATE org_ledger SET record = 'not json' WHERE seq = (SELECT max(seq) FROM org_ledger)"
    )
    if url is None:
        conn = sqlite3.connect(data / DB_NAME)
        with conn:
            conn.execute(tampered)
        conn.close()
        records = read_org_ledger(data)
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(tampered)
        records = read_org_ledger(url)
    assert records is not None
    assert len(records) == 2
    assert records[-1] == {}
