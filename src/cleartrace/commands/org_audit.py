"""`cleartrace org audit`: every device's ledger from the collector's store, re-verified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cleartrace.commands.common import (
    Add,
    Args,
    emit_json,
    every_signature_flag,
    heads_from_arg,
    heads_source,
    json_flag,
    store_args,
)
from cleartrace.errors import UsageError

__all__ = ["org_audit", "register"]


_NEEDED = (
    ("source", "--from"),
    ("keys", "--keys"),
    ("witness_key", "--witness-key"),
    ("out", "--out"),
)


def org_audit(args: Args) -> int:
    from cleartrace.org.audit import INTACT, audit  # pyarrow and boto3 load only for this command
    from cleartrace.org.audit_policy import check_policy_signer
    from cleartrace.org.dataset import MANIFEST
    from cleartrace.org.policy_signing import verify_policy_file
    from cleartrace.org.report_files import missing_officer_libraries

    missing = [flag for name, flag in _NEEDED if getattr(args, name) is None]
    if missing:
        raise UsageError(
            f"org audit needs {', '.join(missing)} (see 'cleartrace org audit --help'); "
            "to re-verify a report: cleartrace org audit check REPORT_DIR"
        )
    if (libraries := missing_officer_libraries()) is not None:
        raise UsageError(libraries)
    # Verified before the audit runs: a policy that does not verify, or that another
    # organisation signed, is bad usage (exit 2).
    policy = None
    if args.policy is not None:
        policy = verify_policy_file(Path(args.policy))
        check_policy_signer(policy, Path(args.keys), Path(args.policy))
    result = audit(
        args.source,
        Path(args.keys),
        Path(args.witness_key),
        Path(args.out),
        officer_key=None if args.officer_key is None else Path(args.officer_key),
        dataset=None if args.dataset is None else Path(args.dataset),
        endpoint_url=args.s3_endpoint,
        k=args.k,
        org_ledger=None if args.org_ledger is None else Path(args.org_ledger),
        policy=policy,
        every_signature=args.every_signature,
        heads_from=heads_source(args.heads_from),
    )
    devices = result.coverage["devices"]
    if args.json:
        emit_json(result.coverage)
    else:
        intact = sum(d["chain"]["status"] == INTACT for d in devices.values())
        print(f"devices: {len(devices)}, {intact} intact up to their witnessed head")
        if args.heads_from is None:
            print(
                "heads: from the store's head files only; a store rolled back as a whole "
                "(bundles and head files together) is found only with --heads-from DATA"
            )
        k = result.coverage["k"]
        print(
            f"fleet figures only for groups of at least {k['value']} devices (k from {k['source']})"
        )
        for line in result.problems:
            print(line)
        org_ledger = result.coverage["org_ledger"]
        print(f"org ledger: {org_ledger['status']}")
        for name, chain in org_ledger["chains"].items():
            if chain["status"] != INTACT:
                print(f"org ledger {name} ({chain['file']}): {chain['reason']}: {chain['detail']}")
        for erasure in org_ledger["erasures"]:
            if erasure["status"] != "recorded":
                print(f"erasure of subject {erasure['subject']}: {erasure['status']}")
        proof = result.coverage.get("proof")
        if proof is not None:
            totals = proof["totals"]
            print(
                f"dataset: {totals['rows']} rows, {totals['rows_in_consent']} inside consent, "
                f"{totals['violations']} violation(s)"
            )
            for v in proof["violations"][:20]:
                print(
                    f"violation: device {v['device']} session {v['session']} bundle "
                    f"{v['bundle']} row {v['row']}: {v['rule']} (ledger record {v['record']})"
                )
        print(result.coverage["evidence"]["note"])
        print(
            f"report: {result.out / 'index.html'}, {result.out / 'report.pdf'}, "
            f"{result.out / 'coverage.json'}, ledgers in {result.out / 'ledgers'}, "
            "signed (check it with 'cleartrace org audit check')"
        )
    if args.dataset is not None and not (Path(args.dataset) / MANIFEST).is_file():
        print(
            f"note: {args.dataset} holds no dataset manifest ({MANIFEST}), so no rows were "
            "proven; give --dataset the directory 'cleartrace org ingest --out' wrote",
            file=sys.stderr,
        )
    if not devices:
        print(
            f"no devices: the store {args.source} holds no bundles and no witnessed heads "
            "(check that --from names the collector's store)",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def _at_least_one(text: str) -> int:
    """--k's value: a whole number of devices, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--k takes a number of devices, 1 or more, not {text!r}")
    return value


def register(sub: Any, add: Add) -> Any:
    """Add `audit` to the subparsers of `cleartrace org`; returns its parser
    (`org audit check` is added to it: commands/report_check.py)."""
    p = add(
        sub,
        "audit",
        "re-verify every device's ledger in the collector's store against its witnessed "
        "head, export each for 'cleartrace audit verify', and write the consent facts "
        "a privacy officer audits (coverage.json, index.html, report.pdf)",
        org_audit,
    )
    store_args(p, required=False)
    p.add_argument(
        "--keys",
        metavar="KEYS",
        help="the organisation key directory ('cleartrace org keygen'): the ledgers travel "
        "inside the sealed bundles, so only KEYS/bundle.key opens them",
    )
    p.add_argument(
        "--witness-key",
        metavar="FILE",
        help="the collector's witness.pub (or its data directory): every device's ledger is "
        "checked against the head the collector signed",
    )
    heads_from_arg(p)
    p.add_argument(
        "--out",
        metavar="REPORT_DIR",
        help="the report directory: index.html, report.pdf, coverage.json and "
        "ledgers/<device>.jsonl are written there",
    )
    p.add_argument(
        "--officer-key",
        metavar="DIR",
        help="the directory holding the officer's officer.key, which signs the report "
        "(default: KEYS; 'cleartrace org keygen --officer-only' makes one)",
    )
    p.add_argument(
        "--dataset",
        metavar="DATASET",
        help="the dataset ingest wrote: prove that every row lies inside consent and that "
        "every withdrawal, deletion and redaction is honoured",
    )
    p.add_argument(
        "--k",
        type=_at_least_one,
        metavar="N",
        help="the report and the evidence pack show a fleet figure that counts devices only "
        "when the fleet holds at least N devices, else 'fewer than N devices' (default: the "
        "--policy's report_min_group, which N may raise but not lower; without --policy, 5)",
    )
    p.add_argument(
        "--org-ledger",
        metavar="FILE",
        help="the officer side's org ledger, where this audit is recorded and which the "
        "report copies and verifies (default: DATASET.org-ledger.jsonl next to --dataset; "
        "the collector's own is read beside --witness-key)",
    )
    p.add_argument(
        "--policy",
        metavar="POLICY",
        help="the organisation's signed policy file (verified first, and it must be signed by "
        "KEYS/sign.pub's key): its report_min_group is the report's k; write the works-council "
        "/ DPA evidence pack (Art. 30 record, DPIA inputs, works-agreement annex) from it and "
        "the verified ledgers to REPORT_DIR/evidence/; without it no pack is written",
    )
    every_signature_flag(p)
    json_flag(p, "coverage.json (what it holds)")
    return p
