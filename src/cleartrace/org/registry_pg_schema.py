"""The PostgreSQL state's tables and its one-statement token bucket
(org/registry_pg.py uses them): the same tables as DATA/collector.db
(org/registry_db.py), typed for PostgreSQL, plus the rate limits' buckets
and the witness key's public half, which only a shared state needs."""

from __future__ import annotations

__all__ = ["SCHEMA", "SCHEMA_PRESENT", "TAKE"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    hash    TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    used    TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    public_key   BYTEA NOT NULL,
    subject      TEXT NOT NULL,
    enrolled_at  TEXT NOT NULL,
    head_seq     BIGINT NOT NULL DEFAULT 0,
    head_hash    TEXT NOT NULL,
    head_bundle  TEXT,
    head_time    TEXT,
    head_counter BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS witness (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    public_key BYTEA  -- the fleet's witness key (raw Ed25519), set by the first to sign
);
INSERT INTO witness(id) VALUES (1) ON CONFLICT DO NOTHING;
-- Bumped for every accepted head; never goes down, never hands out a value twice.
CREATE SEQUENCE IF NOT EXISTS witness_counter AS BIGINT;
CREATE TABLE IF NOT EXISTS bundles (
    name     TEXT PRIMARY KEY,
    device   TEXT NOT NULL REFERENCES devices(device),
    size     BIGINT NOT NULL,
    received TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS org_ledger (
    seq    BIGINT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_buckets (
    key     TEXT PRIMARY KEY,           -- "upload:<device>", "enroll:<network>", "enroll"
    tokens  DOUBLE PRECISION NOT NULL,  -- takes still allowed now (a token bucket)
    updated DOUBLE PRECISION NOT NULL,  -- the server's clock (epoch seconds) at the last take
    period  DOUBLE PRECISION NOT NULL,  -- the rate's period: idle this long, the bucket is full
    allowed BOOLEAN NOT NULL            -- whether the last take was allowed
);
"""

#: Whether every table and the sequence of `SCHEMA` are there (made in one
#: transaction, so all or none): checked first, for `SCHEMA` needs the right to
#: create, which a collector's role with only row privileges does not have.
SCHEMA_PRESENT = """
SELECT to_regclass('tokens') IS NOT NULL AND to_regclass('devices') IS NOT NULL
   AND to_regclass('witness') IS NOT NULL AND to_regclass('witness_counter') IS NOT NULL
   AND to_regclass('bundles') IS NOT NULL AND to_regclass('org_ledger') IS NOT NULL
   AND to_regclass('rate_buckets') IS NOT NULL
"""

#: One take from a bucket, refilled at rate/period from the server's
#: clock (the same for every process, whichever host it runs on), in one statement
#: whose row lock makes concurrent takes count one after another.
TAKE = """
INSERT INTO rate_buckets AS b (key, tokens, updated, period, allowed)
VALUES (%(key)s, %(capacity)s - 1, extract(epoch FROM clock_timestamp()), %(period)s, true)
ON CONFLICT (key) DO UPDATE SET
    tokens = LEVEL - CASE WHEN LEVEL >= 1 THEN 1 ELSE 0 END,
    updated = greatest(b.updated, EXCLUDED.updated),
    period = EXCLUDED.period,
    allowed = LEVEL >= 1
RETURNING allowed, tokens
""".replace(
    # The bucket's level now: what was left, refilled for the time since, up to capacity.
    "LEVEL",
    "least(%(capacity)s, b.tokens + greatest(0, EXCLUDED.updated - b.updated) * %(per_second)s)",
)
