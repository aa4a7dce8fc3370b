"""collector.db on a real SQLite file: what removed rows leave behind."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cleartrace.org.registry import Registry
from cleartrace.org.registry_db import DB_NAME


@pytest.fixture(autouse=True, params=["this build", "built without SQLITE_SECURE_DELETE"])
def sqlite_build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's SQLite zeroes deleted content by default; python.org's builds do not.

    The second case gives every new connection that other default, so the
    registry has to turn it on itself.
    """
    if request.param == "this build":
        return
    connect = sqlite3.connect

    def without_secure_delete(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", without_secure_delete)


def test_every_registry_connection_zeroes_what_it_deletes(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path)
    try:
        registry.device("sha256:" + "0" * 64)  # this thread's reader
        other = threading.Thread(target=registry.device, args=("sha256:" + "1" * 64,))
        other.start()
        other.join()
        connections = [registry._conn, *registry._readers]
        assert len(connections) == 3
        assert [c.execute("PRAGMA secure_delete").fetchone()[0] for c in connections] == [1] * 3
    finally:
        registry.close()


def test_removed_token_rows_leave_no_bytes_in_the_file(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path)
    try:
        tokens = registry.issue_tokens(200)
    finally:
        registry.close()
    hashes = [hashlib.sha256(t.encode()).hexdigest().encode() for t in tokens]
    assert all(h in (tmp_path / DB_NAME).read_bytes() for h in hashes)

    registry = Registry.open(tmp_path)
    try:
        with registry._tx() as conn:  # whatever removes rows goes through this connection
            conn.execute("DELETE FROM tokens")
    finally:
        registry.close()  # the last connection checkpoints the WAL into the file
    left = (tmp_path / DB_NAME).read_bytes()
    assert [h for h in hashes if h in left] == []
