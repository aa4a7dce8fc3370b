"""A home looked at from outside its API, as a test checks what is really on disk:
the session keys as stored, the ledger's record kinds, a session's text as
`cleartrace sessions show` prints it.
"""

from __future__ import annotations

import json
import sqlite3

from cleartrace.paths import Paths
from tests.support.cli import ct


def wrapped_keys(paths: Paths) -> dict[str, bytes]:
    """Each session's key as stored, wrapped by the master key, by session id."""
    with sqlite3.connect(paths.db) as conn:
        rows = conn.execute("SELECT id, wrapped_key FROM sessions").fetchall()
    return {sid: bytes(blob) for sid, blob in rows}


def text_of(session: str) -> str:
    """The text typed in `session`, as `cleartrace sessions show --text` prints it."""
    shown = ct("sessions", "show", session, "--text", "--json", check=False)
    assert shown.returncode == 0, shown.stderr
    return "".join(s["text"] for s in json.loads(shown.stdout)["text"])


def kinds(paths: Paths) -> list[str]:
    """The kind of every ledger record, in order."""
    with sqlite3.connect(paths.db) as conn:
        return [json.loads(r)["kind"] for (r,) in conn.execute("SELECT record FROM ledger")]
