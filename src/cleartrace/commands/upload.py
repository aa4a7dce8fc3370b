"""Device commands of uploading: enroll, upload, outbox list."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from cleartrace.actions import uploads
from cleartrace.commands.common import Add, Args, emit_json, fmt_time, json_flag, open_home
from cleartrace.consent.signed_policy import read_signed_policy
from cleartrace.errors import UsageError
from cleartrace.paths import Paths
from cleartrace.upload.alarm import alarm_text

__all__ = ["enroll", "outbox_list", "register", "upload"]


# Uploading needs requests and pyarrow; they load only for these commands
# (inside the functions of actions/uploads.py and upload/enrolment.enrol), so
# that every other command starts fast.


def enroll(args: Args) -> None:
    from cleartrace.upload.enrolment import enrol

    path = Path(args.policy)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the policy {path}: {exc.strerror}") from None
    signed = read_signed_policy(raw, source=f"the policy {path}")
    token = args.token
    if args.token_file is not None:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file {args.token_file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise UsageError(f"the token file {args.token_file} is not text") from None
    if token is None and sys.stdin.isatty():
        token = getpass.getpass("enrolment token: ").strip()  # a secret: not echoed
    if not token:
        raise UsageError("no enrolment token: give the one your organisation issued with --token")
    with open_home(create=True) as home:
        enrolment = enrol(home, args.collector, signed, token, insecure_http=args.insecure_http)
    if args.json:
        emit_json(
            {
                "device": enrolment.device,
                "subject": enrolment.subject,
                "collector": enrolment.collector,
            }
        )
        return
    print(f"enrolled {enrolment.device} with {enrolment.collector}")
    print(f"policy {signed.policy.id} v{signed.policy.version} (signed by {signed.fingerprint})")
    print("consent is asked again under this policy: 'cleartrace consent give ...' or the tray")
    print(
        "first read what you are asked to agree to (who receives the data, why, "
        "for how long): 'cleartrace consent show'"
    )


def upload(args: Args) -> None:
    with open_home() as home:
        report = uploads.upload_now(home, insecure_http=args.insecure_http)
    if args.json:
        emit_json(report.as_dict())
        return
    if not report.uploaded:
        print("nothing to upload")
    for name in report.uploaded:
        print(f"uploaded {name}")
    for session_id in report.shredded:
        print(f"local copy of {session_id[:12]} shredded (policy retention)")


def outbox_list(args: Args) -> None:
    view = uploads.outbox(Paths.from_env())
    rows: list[dict[str, Any]] = [
        {
            "bundle": item.bundle,
            "session": item.session,
            "state": item.state,
            "bytes": item.size,
            "since": fmt_time(item.since_ns),
        }
        for item in view.items
    ]
    if args.json:
        emit_json(
            {
                "collector": None if view.enrolment is None else view.enrolment.collector,
                "items": rows,
                "ledger_alarm": view.alarm,
            }
        )
        return
    if view.enrolment is None:
        print("not enrolled: nothing leaves this computer ('cleartrace enroll')")
        return
    if view.alarm is not None:
        print(alarm_text(view.alarm))
    if not rows:
        print("the outbox is empty")
    for row in rows:
        what = row["bundle"][:16] if row["bundle"] else "(to be bundled)"
        session = row["session"][:12] if row["session"] else "ledger only"
        print(f"{row['state']:<9} {session:<12} {what}  since {row['since']}")


def _insecure_http(p: Any) -> None:
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow a plain http:// collector on another machine (test setups only; "
        "loopback needs no flag)",
    )


def register(sub: Any, add: Add) -> None:
    """Add `enroll`, `upload` and `outbox` to the top-level commands."""
    p = add(
        sub,
        "enroll",
        "register this device with the organisation's collector and install its signed policy",
        enroll,
    )
    p.add_argument("--collector", required=True, metavar="URL", help="the collector's URL")
    p.add_argument(
        "--policy", required=True, metavar="FILE", help="the organisation's signed policy"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--token", metavar="T", help="single-use enrolment token (asked if omitted)")
    which.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the token from FILE (keeps it out of the process list and shell history)",
    )
    _insecure_http(p)
    json_flag(p)
    p = add(sub, "upload", "upload approved sessions and new ledger records now", upload)
    p.add_argument(
        "--now", action="store_true", help="upload now (the only mode; kept for scripts)"
    )
    _insecure_http(p)
    json_flag(p)
    outbox = add(sub, "outbox", "what waits to be uploaded", None)
    osub = outbox.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(outbox)
    )
    p = add(osub, "list", "list queued bundles and approved sessions", outbox_list)
    json_flag(p)
