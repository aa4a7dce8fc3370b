"""`cleartrace org subject export|erase SUBJECT`: data subject requests from the
organisation's side, by pseudonymous subject id (org/subjects.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleartrace.commands.common import Add, Args, catalog_arg, emit_json, json_flag, store_args

__all__ = ["org_subject_erase", "org_subject_export", "register"]


def _common(args: Args) -> dict[str, Any]:
    return {
        "org_ledger": None if args.org_ledger is None else Path(args.org_ledger),
        "endpoint_url": args.s3_endpoint,
        "catalog": args.catalog,
    }


def _print(args: Args, done: Any, what: str) -> None:
    if args.json:
        emit_json(
            {
                "subject": done.subject,
                "devices": done.devices,
                "bundles": done.bundles,
                "rows": done.rows,
                "written": done.where,
                "sha256": done.digest,
            }
        )
        return
    print(
        f"subject {done.subject}: {done.devices} device(s), {done.bundles} bundle(s), "
        f"{done.rows} row(s) {what}"
    )
    print(f"{done.where} (sha256 {done.digest}), recorded in the org ledger")


def org_subject_export(args: Args) -> int:
    from cleartrace.org.subjects import export  # pyarrow and boto3 load only for this command

    done = export(
        args.subject,
        args.source,
        Path(args.keys),
        Path(args.dataset),
        Path(args.out),
        **_common(args),
    )
    _print(args, done, "exported")
    return 0


def org_subject_erase(args: Args) -> int:
    from cleartrace.org.subjects import erase

    done = erase(args.subject, args.source, Path(args.keys), Path(args.dataset), **_common(args))
    _print(args, done, "erased; receipt")
    return 0


def _arguments(p: Any) -> None:
    p.add_argument("subject", metavar="SUBJECT", help="the pseudonymous subject id (32 hex)")
    store_args(p)
    p.add_argument(
        "--keys",
        required=True,
        metavar="KEYS",
        help="the organisation key directory: bundle.key opens the bundles, sign.key signs "
        "the org ledger record (and the erasure receipt)",
    )
    p.add_argument("--dataset", required=True, metavar="DATASET", help="the dataset ingest wrote")
    p.add_argument(
        "--org-ledger",
        metavar="FILE",
        help="the officer side's org ledger (default: DATASET.org-ledger.jsonl next to "
        "the dataset)",
    )
    catalog_arg(p)
    json_flag(p, "what was done, as JSON")


def register(sub: Any, add: Add) -> None:
    """Add `subject export` and `subject erase` to the subparsers of `cleartrace org`."""
    group = add(
        sub,
        "subject",
        "data subject requests by pseudonymous subject id: export everything held about "
        "one, or erase it",
        None,
    )
    ssub = group.add_subparsers(
        dest="subject_action", metavar="export|erase", required=True, parser_class=type(group)
    )
    p = add(
        ssub,
        "export",
        "write everything the organisation holds about a subject (bundle headers, its "
        "devices' ledgers, its dataset rows) to one JSON file, and record it",
        org_subject_export,
    )
    _arguments(p)
    p.add_argument("--out", required=True, metavar="FILE", help="the JSON file to write (0600)")
    p = add(
        ssub,
        "erase",
        "remove a subject's bundles from the store and rows from the dataset, leave a signed "
        "erasure receipt, and record it; a later ingest does not bring them back",
        org_subject_erase,
    )
    _arguments(p)
