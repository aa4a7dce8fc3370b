"""`cleartrace org keygen` and `cleartrace org policy init|sign|show`: the
organisation's keys and its signed policy; and `cleartrace policy show`, the
policy in force on this device."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cleartrace.categories import Category, parse_categories
from cleartrace.commands.common import Add, Args, emit_json, json_flag
from cleartrace.consent.notice_text import facts
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import installed_policy, policy_file
from cleartrace.formats import key_fingerprint
from cleartrace.org.keys import OFFICER_KEY, generate, generate_officer, load_officer_public
from cleartrace.org.policy_info import read_info
from cleartrace.org.policy_signing import (
    DEFAULT_ORG_POLICY_ID,
    init_policy,
    sign_policy_file,
    verify_policy_file,
)
from cleartrace.paths import Paths
from cleartrace.suites import DEFAULT_SUITE, SUITES

__all__ = [
    "org_keygen",
    "org_policy_init",
    "org_policy_show",
    "org_policy_sign",
    "policy_show_device",
    "register",
    "register_device",
]


# -- keys -------------------------------------------------------------------------


def org_keygen(args: Args) -> None:
    out = Path(args.out)
    if args.officer_only:
        officer = generate_officer(out)
        print(f"officer key:  {key_fingerprint(officer.public_bytes_raw())}")
        print(
            f"officer key written to {out}; {OFFICER_KEY} is private: only the privacy "
            "officer signs audit reports with it",
            file=sys.stderr,
        )
        return
    keys = generate(out, args.suite)
    print(f"bundle key:   {keys.bundle_public.fingerprint} ({keys.bundle_public.suite})")
    print(f"signing key:  {key_fingerprint(keys.signing_public.public_bytes_raw())}")
    officer_pub = load_officer_public(out)
    print(f"officer key:  {key_fingerprint(officer_pub.public_bytes_raw())}")
    print(
        f"organisation keys written to {out}; bundle.key, sign.key and officer.key are "
        "private: "
        "keep them offline and backed up (sessions sealed to a lost key cannot be read)",
        file=sys.stderr,
    )


# -- policy -----------------------------------------------------------------------


def _whole(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number")
    return int(text)


def org_policy_init(args: Args) -> None:
    categories = None if args.categories is None else parse_categories(args.categories)
    notice = None if args.info is None else read_info(Path(args.info))
    signed = init_policy(
        Path(args.keys),
        args.collector,
        Path(args.out),
        notice=notice,
        policy_id=args.id,
        version=args.version,
        purpose=args.purpose,
        categories=categories,
        hold_days=args.hold_days,
        hold_days_min=args.hold_days_min,
        hold_days_max=args.hold_days_max,
        keep_uploaded_days=args.keep_uploaded_days,
        report_min_group=args.report_min_group,
    )
    p = signed.policy
    print(
        f"policy {p.id} v{p.version} signed by {signed.fingerprint}, written to {args.out}; "
        "to change more, edit its \"policy\" and run 'cleartrace org policy sign'",
        file=sys.stderr,
    )


def org_policy_sign(args: Args) -> None:
    signed = sign_policy_file(Path(args.keys), Path(args.in_), Path(args.out))
    p = signed.policy
    print(
        f"policy {p.id} v{p.version} signed by {signed.fingerprint}, written to {args.out}",
        file=sys.stderr,
    )


def _keep_text(days: int | None) -> str:
    if days is None:
        return "until the person deletes it"
    if days == 0:
        return "shredded right after upload"
    return f"{days} days after upload"


def _print_policy(policy: Policy, signer: str, source: str) -> None:
    key = policy.org_key
    categories = ", ".join(c.value for c in policy.categories)
    rows = (
        ("policy", f"{policy.id} v{policy.version}"),
        ("sha256", policy.sha256),
        ("signed by", signer),
        ("source", source),
        ("purpose", policy.purpose),
        ("categories", categories),
        ("collector", policy.collector or "none (nothing is uploaded)"),
        ("org key", f"{key.fingerprint} ({key.suite})" if key else "none"),
        (
            "hold days",
            f"{policy.hold_days} (may be set from {policy.hold_days_min} "
            f"to {policy.hold_days_max})",
        ),
        ("local copy", _keep_text(policy.keep_uploaded_days)),
        ("mouse moves", f"at most {policy.mouse_move_hz} per second"),
        ("exclusions", f"{len(policy.exclusions)} applications"),
        ("pii flagged", ", ".join(c.value for c in policy.pii) or "none"),
        ("pii removed", ", ".join(c.value for c in policy.withheld) or "none (uploaded as typed)"),
        (
            "report k",
            f"fleet figures only for groups of at least {policy.min_group} devices"
            + (" (the default)" if policy.report_min_group is None else ""),
        ),
    )
    notice = policy.notice
    told = (
        ()
        if notice is None
        else (
            ("controller", f"{notice.controller_name} ({notice.controller_contact})"),
            *((f.key.replace("_", " "), f.text) for f in facts(policy)[1:8]),
        )
    )
    for label, value in (*rows, *told):
        print(f"{label + ':':<13} {value}")
    if notice is None and policy.collector is not None:
        print("notice:       none (people are not told who is responsible, why, or how long)")


def _policy_json(policy: Policy, signer: str | None, **extra: Any) -> dict[str, Any]:
    return {"signer": signer, "sha256": policy.sha256, "policy": policy.as_dict(), **extra}


def org_policy_show(args: Args) -> None:
    signed = verify_policy_file(Path(args.file))
    if args.json:
        emit_json(_policy_json(signed.policy, signed.fingerprint))
        return
    _print_policy(signed.policy, signed.fingerprint, args.file)


def policy_show_device(args: Args) -> None:
    """`cleartrace policy show`: the policy in force here, verified now."""
    paths = Paths.from_env()
    signed = installed_policy(paths)
    if signed is None:
        policy, signer, source = DEFAULT_POLICY, None, None
    else:
        policy, signer = signed.policy, signed.fingerprint
        source = str(policy_file(paths))
    if args.json:
        emit_json(_policy_json(policy, signer, installed=signed is not None, file=source))
        return
    _print_policy(
        policy,
        signer or "- (the built-in default)",
        source or "built in: no organisation policy is installed",
    )


# -- parsers ------------------------------------------------------------------------


def _keys_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keys", required=True, metavar="KEYS", help="the key directory 'org keygen' wrote"
    )


def _init_options(p: argparse.ArgumentParser) -> None:
    _keys_arg(p)
    p.add_argument("--collector", required=True, metavar="URL", help="the collector's URL")
    p.add_argument("--out", required=True, metavar="POLICY", help="the signed policy to write")
    p.add_argument(
        "--info",
        metavar="FILE",
        help="what people are told before agreeing: a TOML file with controller, purposes, "
        "dpo, legal_basis, recipients, processing_location, retention, "
        "no_performance_evaluation, works_agreement (controller and purposes required; "
        "see docs/policy-format.md)",
    )
    p.add_argument(
        "--id",
        default=DEFAULT_ORG_POLICY_ID,
        help=f"the policy's name (default {DEFAULT_ORG_POLICY_ID})",
    )
    p.add_argument("--version", type=_whole, default=1, metavar="N", help="its version (default 1)")
    p.add_argument("--purpose", metavar="TEXT", help="why the data is collected, for people")
    p.add_argument(
        "--category",
        action="append",
        dest="categories",
        metavar="C",
        help="ask only for these categories (repeatable; default all but typing_rhythm): "
        + ", ".join(c.value for c in Category),
    )
    p.add_argument(
        "--hold-days", type=_whole, metavar="N", help="days a session waits before upload"
    )
    p.add_argument(
        "--hold-days-min", type=_whole, metavar="N", help="least hold a person may set (default 0)"
    )
    p.add_argument(
        "--hold-days-max", type=_whole, metavar="N", help="most hold a person may set (default 14)"
    )
    p.add_argument(
        "--keep-uploaded-days",
        type=_whole,
        metavar="N",
        help="days the local copy of an uploaded session is kept (0: shred at once; "
        "default: until the person deletes it)",
    )
    p.add_argument(
        "--report-min-group",
        type=_whole,
        metavar="K",
        help="the officer's audit report and evidence pack show a figure that counts devices "
        "only for a group of at least K devices, 2 to 1000 (default 5); 'org audit --k' may "
        "raise it but not lower it",
    )


def register(sub: Any, add: Add) -> None:
    """Add `keygen` and `policy init|sign|show` to the subparsers of `cleartrace org`."""
    p = add(
        sub,
        "keygen",
        "create the organisation's keys: the bundle key uploads are sealed to, the "
        "key that signs policies and the officer's key that signs audit reports",
        org_keygen,
    )
    p.add_argument("--out", required=True, metavar="KEYS", help="a new directory for the keys")
    p.add_argument(
        "--suite",
        choices=SUITES,
        default=DEFAULT_SUITE,
        help=f"HPKE suite of the bundle key (default {DEFAULT_SUITE}, post-quantum hybrid)",
    )
    p.add_argument(
        "--officer-only",
        action="store_true",
        help="write only the officer key (officer.key, officer.pub) into KEYS, which may "
        "already hold the other keys (a directory made before the officer key existed)",
    )

    policy = add(sub, "policy", "create, sign or show the organisation's signed policy", None)
    psub = policy.add_subparsers(
        dest="policy_action", metavar="ACTION", required=True, parser_class=type(policy)
    )
    _init_options(
        add(
            psub,
            "init",
            "write a new signed policy from the default template with this collector and keys",
            org_policy_init,
        )
    )
    p = add(
        psub,
        "sign",
        "sign an edited policy (a bare policy or a signed file whose policy was edited)",
        org_policy_sign,
    )
    _keys_arg(p)
    p.add_argument("--in", dest="in_", required=True, metavar="FILE", help="the policy to sign")
    p.add_argument("--out", required=True, metavar="POLICY", help="the signed policy to write")
    p = add(
        psub, "show", "verify a signed policy file and show its signer and fields", org_policy_show
    )
    p.add_argument("file", metavar="FILE", help="a signed policy file")
    json_flag(p)


def register_device(sub: Any, add: Add) -> None:
    """Add `policy show` to the top-level subparsers (`cleartrace policy show`)."""
    policy = add(sub, "policy", "show the policy in force on this device", None)
    psub = policy.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(policy)
    )
    json_flag(
        add(
            psub,
            "show",
            "show the policy in force here (the organisation's, verified now, or the default)",
            policy_show_device,
        )
    )
