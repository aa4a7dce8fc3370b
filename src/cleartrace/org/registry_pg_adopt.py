"""The PostgreSQL state taking in a collector's state moved from
DATA/collector.db (org/state_move.py): one transaction, under table locks
that make every collector process sharing the database wait meanwhile; a
database holding anything else is left exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from cleartrace.errors import UsageError
from cleartrace.formats import key_fingerprint
from cleartrace.org.devices import DEVICE_COLUMNS, DEVICE_SELECT
from cleartrace.org.state_move import StateRows

__all__ = ["adopt"]

_COUNTER = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM witness_counter"


def adopt(conn: psycopg.Connection[Any], rows: StateRows, witness: bytes, where: str) -> bool:
    """Copy `rows`, signed by the witness key `witness` (raw Ed25519 public key),
    into the empty state on `conn`, inside the caller's transaction: True; or,
    when it already holds all of them (a move run again, the fleet perhaps gone
    on since), nothing: False.

    Raises:
        UsageError: it holds another state, or another witness key: nothing is
            written (the caller's transaction rolls back).
    """
    conn.execute("LOCK TABLE witness, tokens, devices, bundles, org_ledger IN EXCLUSIVE MODE")
    ((fleet_key,),) = conn.execute("SELECT public_key FROM witness").fetchall()
    if fleet_key is not None and bytes(fleet_key) != witness:
        raise UsageError(
            f"the collectors sharing {where} sign with another witness key "
            f"({key_fingerprint(bytes(fleet_key))}) than this collector's "
            f"({key_fingerprint(witness)}); a state moves only into an empty database"
        )
    ((held,),) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM tokens) OR EXISTS (SELECT 1 FROM devices) "
        "OR EXISTS (SELECT 1 FROM bundles) OR EXISTS (SELECT 1 FROM org_ledger)"
    ).fetchall()
    if held:
        differ = _differs(conn, rows)
        if differ and fleet_key is not None and _earlier_copy(conn, rows):
            raise UsageError(
                f"{where} holds an earlier copy of this collector's state (a move that did "
                "not finish, after which the collector went on serving its file); give an "
                "empty database, or empty this one, and move again"
            )
        if differ or fleet_key is None:
            raise UsageError(
                f"{where} already holds a collector's state, and not this one (its "
                f"{differ or 'witness key'} differ); a state moves only into an empty "
                "database: give another, or serve this directory's as it is"
            )
        return False
    conn.execute("UPDATE witness SET public_key = %s", (witness,))
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
            f"SELECT setval('witness_counter', greatest(%s, ({_COUNTER})))",
            (rows.counter,),
        )
    return True


def _differs(conn: psycopg.Connection[Any], rows: StateRows) -> str:
    """What of `rows` the state on `conn` does not hold as this state or as the
    fleet gone on from it ("" for nothing): a token (a used one unused again), a
    device (its key, subject, enrolment, or a head other than this one at its
    sequence number or behind it), a bundle, a record of the org ledger, or the
    witness counter. A head further along is taken on trust: the fleet accepted
    it on top of this one."""
    tokens = {h: (created, used) for h, created, used in conn.execute("SELECT * FROM tokens")}
    for h, created, used in rows.tokens:
        theirs = tokens.get(h)
        if theirs is None or theirs[0] != created or (used is not None and theirs[1] != used):
            return "tokens"
    devices = {r[0]: r for r in conn.execute(DEVICE_SELECT).fetchall()}
    for mine in rows.devices:
        theirs = devices.get(mine[0])
        if theirs is None or (bytes(theirs[1]), *theirs[2:4]) != (bytes(mine[1]), *mine[2:4]):
            return "devices"
        seq, counter = theirs[4], theirs[8]
        if seq < mine[4] or counter < mine[8] or (seq == mine[4] and theirs[5:8] != mine[5:8]):
            return "devices' heads"
    bundles = {r[0]: r for r in conn.execute("SELECT name, device, size, received FROM bundles")}
    if any(bundles.get(bundle[0]) != tuple(bundle) for bundle in rows.bundles):
        return "bundles"
    ledger = dict(conn.execute("SELECT seq, record FROM org_ledger").fetchall())
    if any(
        json.loads(ledger.get(seq, "null")) != json.loads(text) for seq, text in rows.org_ledger
    ):
        return "org ledgers"
    ((counter,),) = conn.execute(_COUNTER).fetchall()
    return "witness counters" if int(counter) < rows.counter else ""


def _earlier_copy(conn: psycopg.Connection[Any], rows: StateRows) -> bool:
    """Whether the state on `conn` is this one as it was earlier: its org ledger
    (signed by this witness key, checked by the caller) is a beginning of this
    one's, record for record."""
    theirs = [text for _, text in conn.execute("SELECT seq, record FROM org_ledger ORDER BY seq")]
    mine = [text for _, text in rows.org_ledger]
    return 0 < len(theirs) <= len(mine) and [json.loads(t) for t in theirs] == [
        json.loads(t) for t in mine[: len(theirs)]
    ]
