"""`cleartrace org audit check REPORT_DIR [--officer-key PUB]`: re-verify a signed
audit report anywhere (org/report_signing.py).

`org audit` is a group of actions; `register` returns its subparsers so that
the audit itself is added beside `check`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cleartrace.commands.common import Add, Args
from cleartrace.org.keys import load_officer_public
from cleartrace.org.report_signing import check_report

__all__ = ["org_audit_check", "register"]


def org_audit_check(args: Args) -> int:
    """Print "ok: N files, signed by FP" (exit 0) or each problem (exit 1)."""
    officer = None if args.officer_key is None else load_officer_public(Path(args.officer_key))
    result = check_report(Path(args.report), officer)
    if result.ok:
        print(f"ok: {result.files} files, signed by {result.signer}")
        return 0
    for problem in result.problems:
        print(f"{args.report}: {problem}", file=sys.stderr)
    print(
        f"{args.report}: {len(result.problems)} problem(s); do not rely on this report "
        "until it is signed again by the officer",
        file=sys.stderr,
    )
    return 1


def register(audit: Any, add: Add) -> None:
    """Add `check` to the `org audit` parser (commands/org_audit.py): without
    it, `org audit` audits; `org audit check REPORT_DIR` re-verifies a report."""
    asub = audit.add_subparsers(
        dest="audit_action", metavar="check", required=False, parser_class=type(audit)
    )
    p = add(
        asub,
        "check",
        "verify a signed audit report: its officer signature, every file's hash, no file added",
        org_audit_check,
    )
    p.add_argument("report", metavar="REPORT_DIR", help="the report directory")
    p.add_argument(
        "--officer-key",
        metavar="PUB",
        help="the officer.pub the report must be signed by (or the key directory holding "
        "it); without it, any valid signature is accepted and its fingerprint printed",
    )
