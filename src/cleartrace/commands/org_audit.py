"""`cleartrace org audit`: every device's ledger from the collector's store, re-verified."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cleartrace.commands.common import Add, Args, emit_json, json_flag

__all__ = ["org_audit", "register"]


def org_audit(args: Args) -> int:
    from cleartrace.org.audit import INTACT, audit  # pyarrow and boto3 load only for this command

    result = audit(
        args.source,
        Path(args.keys),
        Path(args.witness_key),
        Path(args.out),
        endpoint_url=args.s3_endpoint,
    )
    devices = result.coverage["devices"]
    if args.json:
        emit_json(result.coverage)
    else:
        intact = sum(d["chain"]["status"] == INTACT for d in devices.values())
        print(f"devices: {len(devices)}, {intact} intact up to their witnessed head")
        for line in result.problems:
            print(line)
        print(f"report: {result.out / 'coverage.json'}, ledgers in {result.out / 'ledgers'}")
    if not devices:
        print(
            f"no devices: the store {args.source} holds no bundles and no witnessed heads "
            "(check that --from names the collector's store)",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def register(sub: Any, add: Add) -> None:
    """Add `audit` to the subparsers of `cleartrace org`."""
    p = add(
        sub,
        "audit",
        "re-verify every device's ledger in the collector's store against its witnessed "
        "head, export each for 'cleartrace audit verify', and write the consent facts "
        "(coverage.json) a privacy officer audits",
        org_audit,
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="the collector's store: its directory, or the S3 location it writes to",
    )
    p.add_argument(
        "--keys",
        required=True,
        metavar="KEYS",
        help="the organisation key directory ('cleartrace org keygen'): the ledgers travel "
        "inside the sealed bundles, so only KEYS/bundle.key opens them",
    )
    p.add_argument(
        "--witness-key",
        required=True,
        metavar="FILE",
        help="the collector's witness.pub (or its data directory): every device's ledger is "
        "checked against the head the collector signed",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="REPORT_DIR",
        help="the report directory: coverage.json and ledgers/<device>.jsonl are written there",
    )
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible server (MinIO, Ceph); default: AWS_ENDPOINT_URL or AWS itself",
    )
    json_flag(p, "coverage.json (what it holds)")
