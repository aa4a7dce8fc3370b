"""`cleartrace org ingest`: stored bundles in, a training dataset out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleartrace.commands.common import (
    Add,
    Args,
    catalog_arg,
    emit_json,
    heads_from_arg,
    heads_source,
    json_flag,
    store_args,
)
from cleartrace.org import ENGINES, FORMATS

if TYPE_CHECKING:
    from cleartrace.org.ingest_summary import IngestSummary

__all__ = ["org_ingest", "register", "summary_text"]


def summary_text(summary: IngestSummary) -> str:
    """The summary as a few lines for people (counts, reasons and bundle names only)."""
    s = summary.as_dict()
    b, e = s["bundles"], s["events"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in e["dropped"].items())
    lines = [
        f"bundles: {b['read']} read, {b['ingested']} ingested ({b['unchanged']} unchanged), "
        f"{b['rejected']} rejected",
        f"events: {e['kept']} kept; dropped: {dropped}",
        f"actions: {s['actions']['kept']} kept",
    ]
    titles = {r: n for r, n in s["titles_removed"].items() if n}
    if titles:
        lines.append("window titles removed: " + ", ".join(f"{n} {r}" for r, n in titles.items()))
    for v in s["violations"]:
        cats = ", ".join(f"{c} {n}" for c, n in v["by_category"].items())
        lines.append(
            f"violation: bundle {v['bundle'][:16]} (device {v['device'][:23]}): "
            f"{v['events']} events outside consent ({cats})"
        )
    for r in s["rejected"]:
        lines.append(f"rejected: bundle {r['bundle'][:16]}: {r['reason']}: {r['detail']}")
    with_bundles = {r["device"] for r in s["rejected"]}
    for device, reason in s["devices_rejected"].items():
        if device not in with_bundles:  # no bundle of it left to name
            lines.append(f"rejected: device {device[:23]}: {reason}")
    lines.append(f"files: {s['files']['written']} written, {s['files']['removed']} removed")
    return "\n".join(lines)


def org_ingest(args: Args) -> int:
    from cleartrace.org.ingest import ingest  # pyarrow and boto3 load only for this command

    formats = FORMATS if args.format is None else (args.format,)
    progress = not args.quiet and sys.stderr.isatty()
    summary = ingest(
        args.source,
        Path(args.keys),
        Path(args.out),
        formats=formats,
        progress=progress,
        endpoint_url=args.s3_endpoint,
        witness_key=None if args.witness_key is None else Path(args.witness_key),
        heads_from=heads_source(args.heads_from),
        org_ledger=None if args.org_ledger is None else Path(args.org_ledger),
        table=args.table,
        catalog=args.catalog,
        engine=args.engine,
        address=args.address,
    )
    if args.json:
        emit_json(summary.as_dict())
    else:
        print(summary_text(summary))
    return 0 if summary.ok else 1


def register(sub: Any, add: Add) -> None:
    """Add `ingest` to the subparsers of `cleartrace org`."""
    p = add(
        sub,
        "ingest",
        "turn stored bundles into a training dataset (Parquet, JSON Lines) that honours "
        "every withdrawal, deletion and redaction",
        org_ingest,
    )
    store_args(p)
    p.add_argument(
        "--keys",
        required=True,
        metavar="KEYS",
        help="the organisation key directory written by 'cleartrace org keygen'",
    )
    p.add_argument("--out", required=True, metavar="DATASET", help="the dataset directory")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="write only this format (default: both parquet and jsonl)",
    )
    p.add_argument(
        "--witness-key",
        metavar="FILE",
        help="the collector's witness.pub (or its data directory): every device's witnessed "
        "head must be there, signed by it and name that device",
    )
    heads_from_arg(p)
    p.add_argument(
        "--org-ledger",
        metavar="FILE",
        help="the officer side's org ledger the run is recorded in, signed by KEYS/sign.key "
        "(default: DATASET.org-ledger.jsonl next to --out)",
    )
    p.add_argument(
        "--table",
        choices=("directory", "iceberg"),
        default="directory",
        help="where the rows go: a directory of files (default), or the Apache Iceberg tables "
        "cleartrace.events and cleartrace.actions (Parquet; appended to, erased for good)",
    )
    catalog_arg(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="inprocess",
        help="where the per-bundle work (read, verify, decrypt, derive rows) runs: this "
        "process (default), or a Ray cluster (needs the 'ray' extra); the dataset is the same",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="with --engine ray: the cluster's address (HOST:PORT of 'ray start --head'); "
        "default: a new Ray cluster on this machine for the run, even where RAY_ADDRESS is "
        "set or 'ray start' left one running. Every node needs KEYS at the same path and "
        "the source. A cluster with token authentication needs RAY_AUTH_MODE=token and "
        "RAY_AUTH_TOKEN_PATH",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    json_flag(p, "the summary as JSON")
