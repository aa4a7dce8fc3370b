"""The PostgreSQL state taking in a collector's state moved from
DATA/collector.db (org/state_move.py): one transaction, under table locks
that make every collector process sharing the database wait meanwhile."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from cleartrace.errors import UsageError
from cleartrace.org.devices import DEVICE_COLUMNS, DEVICE_SELECT
from cleartrace.org.state_move import StateRows

__all__ = ["adopt"]


def adopt(conn: psycopg.Connection[Any], rows: StateRows, where: str) -> bool:
    """Copy `rows` into the empty state on `conn` (inside the caller's
    transaction): True; or, when it already holds all of them (a move run
    again, the fleet perhaps gone on since), nothing: False.

    Raises:
        UsageError: it holds another state (or part of this one): nothing is copied.
    """
    conn.execute("LOCK TABLE tokens, devices, bundles, org_ledger IN EXCLUSIVE MODE")
    ((held,),) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM tokens) OR EXISTS (SELECT 1 FROM devices) "
        "OR EXISTS (SELECT 1 FROM bundles) OR EXISTS (SELECT 1 FROM org_ledger)"
    ).fetchall()
    if held:
        missing = _missing(conn, rows)
        if missing:
            raise UsageError(
                f"{where} already holds a collector's state, and not this one (its {missing} "
                "differ); a state moves only into an empty database: give another, or "
                "serve this directory's as it is"
            )
        return False
    with conn.cursor() as cur:
        with cur.copy("COPY tokens (hash, created, used) FROM STDIN") as copy:
            for token in rows.tokens:
                copy.write_row(token)
        with cur.copy(f"COPY devices ({DEVICE_COLUMNS}) FROM STDIN") as copy:
            for device in rows.devices:
                copy.write_row(device)
        with cur.copy("COPY bundles (name, device, size, received) FROM STDIN") as copy:
            for bundle in rows.bundles:
                copy.write_row(bundle)
        with cur.copy("COPY org_ledger (seq, record) FROM STDIN") as copy:
            for record in rows.org_ledger:
                copy.write_row(record)
    if rows.counter > 0:
        # Every counter drawn from here on is above every head file already written.
        conn.execute(
            "SELECT setval('witness_counter', greatest(%s, "
            "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM witness_counter)))",
            (rows.counter,),
        )
    return True


def _missing(conn: psycopg.Connection[Any], rows: StateRows) -> str:
    """What of `rows` the state on `conn` lacks ("" for nothing): a token, a
    device (with its key, subject and enrolment, and a head no older), a
    bundle, a record of the org ledger, or the witness counter."""
    tokens = {h: used for h, _, used in conn.execute("SELECT hash, created, used FROM tokens")}
    if any(
        h not in tokens or (used is not None and tokens[h] is None) for h, _, used in rows.tokens
    ):
        return "tokens"
    devices = {r[0]: r for r in conn.execute(DEVICE_SELECT).fetchall()}
    for mine in rows.devices:
        theirs = devices.get(mine[0])
        if theirs is None or (bytes(theirs[1]), theirs[2], theirs[3]) != (
            bytes(mine[1]),
            mine[2],
            mine[3],
        ):
            return "devices"
        if theirs[4] < mine[4] or theirs[8] < mine[8]:
            return "devices' heads"
    names = {name for (name,) in conn.execute("SELECT name FROM bundles")}
    if any(name not in names for name, *_ in rows.bundles):
        return "bundles"
    ledger = dict(conn.execute("SELECT seq, record FROM org_ledger").fetchall())
    if any(
        json.loads(ledger.get(seq, "null")) != json.loads(text) for seq, text in rows.org_ledger
    ):
        return "org ledgers"
    ((counter,),) = conn.execute(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM witness_counter"
    ).fetchall()
    return "witness counters" if int(counter) < rows.counter else ""
