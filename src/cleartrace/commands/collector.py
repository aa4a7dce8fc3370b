"""`cleartrace org serve | token | devices`: the organisation's collector."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cleartrace.commands.common import Add, Args, emit_json, json_flag
from cleartrace.errors import UsageError
from cleartrace.org.limits import (
    DEFAULT_BODY_MEMORY_MB,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_ENROLL_RATE,
    DEFAULT_ENROLL_RATE_TOTAL,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BUNDLE_MB,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_BODY_RATE_KIB,
    DEFAULT_RATE,
    Rate,
)
from cleartrace.org.registry_db import DB_NAME
from cleartrace.org.state import is_shared, open_state, redacted, refuse_password
from cleartrace.org.witness import DEFAULT_RECHECK_HEADS, WITNESS_KEY, WITNESS_PUB

__all__ = ["org_devices", "org_move_state", "org_serve", "org_token", "register"]


def _log_activity() -> None:
    """Enrolments, accepted and refused bundles on stderr, as a server's access log.

    The CLI shows only warnings; a collector's operator wants to see it work.
    Lines name devices and bundles by hash prefixes and reasons, never tokens or keys.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("cleartrace.org")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def org_serve(args: Args) -> int:
    # The server's libraries (uvicorn, Starlette, boto3) load only for this command.
    from cleartrace.org.serve import ServeOptions, serve

    options = ServeOptions(
        data=Path(args.data),
        port=args.port,
        state=_state_of(args),
        host=args.host,
        store=args.store,
        s3_endpoint=args.s3_endpoint,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        policy=Path(args.policy) if args.policy else None,
        max_bundle_mb=args.max_bundle_mb,
        rate=Rate.parse(args.rate),
        recheck_heads=args.recheck_heads,
        body_memory_mb=args.body_memory_mb,
        body_timeout=args.body_timeout,
        enroll_rate=Rate.parse(args.enroll_rate),
        enroll_rate_total=Rate.parse(args.enroll_rate_total),
        header_timeout=args.header_timeout,
        min_body_rate_kib=args.min_body_rate,
        max_connections=args.max_connections,
    )

    def ready(url: str) -> None:
        # The URL alone on stdout, so a script (or a test) can read it, --port 0 included.
        print(url, flush=True)

    _log_activity()
    serve(options, on_ready=ready)
    return 0


def _state_of(args: Args) -> str | None:
    """`--state`, refused when it holds a password (the process list shows it to all).

    Raises:
        UsageError: the URL carries a password.
    """
    state: str | None = args.state
    return None if state is None else refuse_password(state, "--state")


def org_token(args: Args) -> int:
    data, state = Path(args.data), _state_of(args)
    fresh = not is_shared(state) and not (data / DB_NAME).exists()
    registry = open_state(data, state)
    if fresh:
        # Likely a typo: tokens for a registry no collector serves enrol nothing.
        print(
            f"cleartrace: note: {data} held no collector yet; its registry was created now — "
            "'org serve --data' must name this same directory",
            file=sys.stderr,
        )
    try:
        tokens = registry.issue_tokens(args.count)
    finally:
        registry.close()
    sys.stdout.write("".join(t + "\n" for t in tokens))
    return 0


def org_devices(args: Args) -> int:
    registry = open_state(Path(args.data), _state_of(args))
    try:
        devices = registry.devices()
    finally:
        registry.close()
    if args.json:
        emit_json([d.as_json() for d in devices])
        return 0
    if not devices:
        print("no device is enrolled; give one a token from 'cleartrace org token'")
        return 0
    # Whole values, never cut: an officer copies the device into
    # `audit verify --expect-device` and the head into `--head SEQ:HASH`.
    print(f"{'DEVICE':<71} {'SUBJECT':<32} {'ENROLLED':<24} HEAD (SEQ:HASH)")
    for d in devices:
        print(f"{d.device:<71} {d.subject:<32} {d.enrolled_at:<24} {d.head.seq}:{d.head.hash}")
    return 0


def org_move_state(args: Args) -> int:
    from cleartrace.org.state_move import move_state

    target: str = refuse_password(args.to, "--to")
    if not is_shared(target):
        raise UsageError(
            f"--to {redacted(target)!r} is not a PostgreSQL state; give "
            "postgresql://USER@HOST/DATABASE (its password in PGPASSWORD or ~/.pgpass)"
        )
    data = Path(args.data)
    moved = move_state(data, target)
    if args.json:
        emit_json(moved.as_dict())
        return 0
    how = "moved" if moved.copied else "was already there; finished moving"
    print(
        f"the collector's state in {data / DB_NAME} {how}: {moved.tokens} token(s) "
        f"({moved.unused_tokens} unused), {moved.devices} device(s), {moved.bundles} "
        f"bundle(s), {moved.org_ledger} org ledger record(s), witness counter {moved.counter}"
    )
    print(
        f"{data / DB_NAME} is kept as {moved.kept}, which nothing reads. Start every "
        f"collector with --state {moved.state!r}, each with a copy of "
        f"{data / WITNESS_KEY} and {WITNESS_PUB} in its --data",
        file=sys.stderr,
    )
    return 0


def register(sub: Any, add: Add) -> None:
    """Add `serve`, `token`, `devices` and `move-state` to the `cleartrace org` subcommands."""
    p = add(
        sub,
        "serve",
        "run the collector: enrolment, bundle uploads and witnessed ledger heads over HTTP(S)",
        org_serve,
    )
    _data(p)
    _state(p)
    p.add_argument(
        "--store",
        metavar="URL",
        help="where bundles go: s3://BUCKET/PREFIX or a directory (default: DATA itself)",
    )
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible endpoint (MinIO, Ceph); default AWS_ENDPOINT_URL or AWS itself",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, required=True, metavar="N", help="TCP port; 0 picks a free one"
    )
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="signed policy to serve at /v1/policy; devices must enrol with it",
    )
    p.add_argument(
        "--max-bundle-mb",
        type=float,
        default=DEFAULT_MAX_BUNDLE_MB,
        metavar="N",
        help=f"largest bundle accepted, in MiB (default {DEFAULT_MAX_BUNDLE_MB})",
    )
    p.add_argument(
        "--rate",
        default=f"{DEFAULT_RATE.count}/m",
        metavar="N/PERIOD",
        help=f"uploads per device, e.g. 10/s or 1000/h (default {DEFAULT_RATE.count}/m)",
    )
    p.add_argument(
        "--recheck-heads",
        type=float,
        default=DEFAULT_RECHECK_HEADS,
        metavar="SECONDS",
        help="how often every head file in the store is checked against the registry and "
        f"rewritten if it differs, at least 1 (default {DEFAULT_RECHECK_HEADS:g})",
    )
    p.add_argument(
        "--body-memory-mb",
        type=float,
        default=DEFAULT_BODY_MEMORY_MB,
        metavar="N",
        help="request bodies held in memory at once, in MiB; beyond, uploads get 503 "
        f"(default {DEFAULT_BODY_MEMORY_MB})",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds a request body may take to arrive (default {DEFAULT_BODY_TIMEOUT:g})",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="seconds a connection may take to send a request's line and headers, and an "
        f"upload its bundle header (default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    p.add_argument(
        "--min-body-rate",
        type=float,
        default=DEFAULT_MIN_BODY_RATE_KIB,
        metavar="KIB_S",
        help="KiB/s a request body must keep up with once --header-timeout has passed; "
        f"slower ones get 408, 0 turns it off (default {DEFAULT_MIN_BODY_RATE_KIB:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections served at once; beyond, requests get 503 (default "
        f"{DEFAULT_MAX_CONNECTIONS})",
    )
    p.add_argument(
        "--enroll-rate",
        default=f"{DEFAULT_ENROLL_RATE.count}/m",
        metavar="N/PERIOD",
        help="enrolment attempts per client network (an IPv4 address, an IPv6 /64) "
        f"(default {DEFAULT_ENROLL_RATE.count}/m)",
    )
    p.add_argument(
        "--enroll-rate-total",
        default=f"{DEFAULT_ENROLL_RATE_TOTAL.count}/m",
        metavar="N/PERIOD",
        help="well-formed, self-signed enrolment attempts overall "
        f"(default {DEFAULT_ENROLL_RATE_TOTAL.count}/m)",
    )

    p = add(sub, "token", "print single-use enrolment tokens, one per line", org_token)
    _data(p)
    _state(p)
    p.add_argument("--count", type=int, default=1, metavar="N", help="how many (default 1)")

    p = add(sub, "devices", "list enrolled devices and their witnessed ledger heads", org_devices)
    _data(p)
    _state(p)
    json_flag(p)

    p = add(
        sub,
        "move-state",
        "move a stopped collector's state from DATA/collector.db into PostgreSQL, for a fleet",
        org_move_state,
    )
    _data(p)
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the empty PostgreSQL database: postgresql://USER@HOST/DB, without a password "
        "(give it in PGPASSWORD or ~/.pgpass)",
    )
    json_flag(p)


def _data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="the collector's data directory")


def _state(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        metavar="URL",
        help="where the collector's tokens, devices, heads and bundle index live: "
        "postgresql://USER@HOST/DB, shared by a fleet of collectors, without a password "
        "(give it in PGPASSWORD or ~/.pgpass) (default: DATA/collector.db)",
    )
