"""`cleartrace ...`: parse, make one domain call, print.

`main()` is the one place where errors become messages and exit codes:
0 ok, 1 a check failed (e.g. a tampered ledger), 2 bad usage or input.
Messages go to stderr, `--json` output to stdout; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cleartrace import __version__, commands
from cleartrace.commands import (
    collector,
    ingest,
    org_admin,
    org_audit,
    org_subject,
    report_check,
    settings,
)
from cleartrace.commands import keys as keys_commands
from cleartrace.commands import upload as upload_commands
from cleartrace.commands.common import every_signature_flag, json_flag
from cleartrace.errors import ClearTraceError, UsageError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2.

    A value such as ``-5m`` is taken as a value, not as an unknown option, so
    ``pause --for -5m`` reaches the duration parser, which says a duration
    cannot be negative, instead of argparse's "expected one argument". No
    option of ClearTrace starts with a dash and a digit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"cleartrace: {message} (see '{self.prog} --help')\n")


def _add(sub: Any, name: str, help_: str, func: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(func=func)
    return p


def _categories(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--category",
        action="append",
        metavar="C",
        dest="categories",
        help=(
            "keys, mouse_move, clicks, scroll, app_focus, window_titles or typing_rhythm "
            "(repeatable)"
        ),
    )
    group.add_argument(
        "--all",
        action="store_true",
        help="every category; to give or refuse, every one but typing_rhythm (name it)",
    )


def _session_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID", help="session id or a unique prefix of it")


def _redact_parser(ssub: Any) -> None:
    p = _add(
        ssub,
        "redact",
        "remove events from a session for good: a span of text, a time range, "
        "a pattern or detected personal data",
        commands.sessions_redact,
    )
    _session_id(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--span",
        metavar="START:END",
        help="characters START to END (from 0, END excluded) of a text stream",
    )
    how.add_argument(
        "--from",
        dest="from_",
        metavar="T",
        help="start of a time range (10:15, 10:15:30, +5m after the start, or ISO 8601)",
    )
    how.add_argument("--match", metavar="REGEX", help="every match of a regular expression")
    how.add_argument("--pii", action="store_true", help="everything detected as personal data")
    p.add_argument("--to", metavar="T", help="end of the time range (with --from)")
    p.add_argument(
        "--stream",
        type=int,
        default=1,
        metavar="N",
        help="the text stream of --span, as numbered by 'sessions show --text' (default 1)",
    )
    p.add_argument(
        "--category",
        action="append",
        metavar="C",
        help="with --pii: only these categories (repeatable), e.g. email, payment_card",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would go; change nothing")
    json_flag(p)


#: Starts the tray app and returns its exit code; given by the program's entry
#: point (cleartrace/launch.py), the one module allowed to reach the UI.
TrayLauncher = Callable[[], int]


def _no_tray() -> int:
    raise UsageError("the tray app starts from the 'cleartrace' program, not from here")


def build_parser(tray: TrayLauncher = _no_tray) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cleartrace",
        description="Consent-first recording of keyboard and mouse workflows.",
    )
    parser.add_argument("--version", action="version", version=f"cleartrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _add(
        sub,
        "tray",
        "start the tray app: state icon, pause, review and consent (the default command)",
        lambda _args: tray(),
    )
    p = _add(
        sub,
        "status",
        "show consent, recording state, store, key storage and display",
        commands.status,
    )
    json_flag(p)

    consent = _add(sub, "consent", "show, give, refuse or withdraw consent per category", None)
    csub = consent.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    json_flag(_add(csub, "show", "show the consent of every category", commands.consent_show))
    for action, text in (
        ("give", "give consent for categories"),
        ("refuse", "refuse consent for categories"),
        ("withdraw", "withdraw consent for categories (takes effect at once)"),
    ):
        _categories(_add(csub, action, text, commands.consent_change))

    p = _add(sub, "record", "record in the foreground until Ctrl+C / SIGTERM", commands.record)
    p.add_argument(
        "--duration",
        metavar="S",
        help="stop after this long (e.g. 90s, 15m, 1h; the unit is required)",
    )

    p = _add(sub, "pause", "pause the running recorder (all hooks removed)", commands.pause)
    p.add_argument(
        "--for",
        dest="for_",
        metavar="DURATION",
        help="resume by itself after this long (e.g. 15m, 1h)",
    )
    _add(sub, "resume", "resume a paused recorder", commands.resume)

    exclude = _add(sub, "exclude", "list, add or remove excluded applications", None)
    esub = exclude.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    json_flag(_add(esub, "list", "list excluded applications", commands.exclude_list))
    for action, text in (
        ("add", "never record while APP has focus"),
        ("remove", "remove a personal exclusion"),
    ):
        _add(esub, action, text, commands.exclude_change).add_argument(
            "app", metavar="APP", help="application class (WM_CLASS), case-insensitive"
        )

    sessions = _add(
        sub,
        "sessions",
        "list, show, redact, approve, hold or delete recorded sessions; release a detection; "
        "end the current one",
        None,
    )
    ssub = sessions.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    json_flag(_add(ssub, "list", "list sessions", commands.sessions_list))
    p = _add(ssub, "show", "show one session", commands.sessions_show)
    _session_id(p)
    p.add_argument("--text", action="store_true", help="include the typed text per window")
    p.add_argument(
        "--pii", action="store_true", help="include the text and mark detected personal data"
    )
    p.add_argument(
        "--activity", action="store_true", help="add keys, moves, clicks and scrolls per minute"
    )
    json_flag(p)
    _redact_parser(ssub)
    p = _add(
        ssub,
        "release",
        "upload a detection as typed: it is not personal data (by default what the "
        "detectors find is removed from what leaves)",
        commands.sessions_release,
    )
    _session_id(p)
    p.add_argument(
        "--stream",
        type=int,
        required=True,
        metavar="N",
        help="the text stream, as numbered by 'sessions show --pii'",
    )
    p.add_argument(
        "--span",
        required=True,
        metavar="START:END",
        help="the detection's characters, as 'sessions show --pii' prints them",
    )
    json_flag(p)
    for action, text in (
        ("approve", "approve a session for upload"),
        ("hold", "hold a session back: it is not uploaded and does not approve itself"),
    ):
        _session_id(_add(ssub, action, text, commands.sessions_review))
    p = _add(
        ssub, "delete", "delete a session (its key is destroyed first)", commands.sessions_delete
    )
    _session_id(p)
    _add(
        ssub,
        "end-current",
        "end the session being recorded now, so it can be reviewed (recording goes on)",
        commands.sessions_end_current,
    )

    p = _add(sub, "forget", "remove the last minutes of recording for good", commands.forget)
    p.add_argument("--last", required=True, metavar="DURATION", help="how far back, e.g. 15m, 1h")
    p = _add(
        sub,
        "export",
        "export all my data, decrypted: sessions, text, ledger, consent",
        commands.export,
    )
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (JSON)")

    ledger = _add(sub, "ledger", "show or export the consent ledger", None)
    lsub = ledger.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    json_flag(_add(lsub, "show", "show the ledger records", commands.ledger_show))
    p = _add(lsub, "export", "export the ledger as JSON Lines", commands.ledger_export)
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")

    audit = _add(sub, "audit", "verify an exported ledger (no local store needed)", None)
    asub = audit.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    p = _add(
        asub,
        "verify",
        "verify signatures, hash chain and order of a ledger export",
        commands.audit_verify,
    )
    p.add_argument("file", metavar="FILE", help="a file written by 'cleartrace ledger export'")
    p.add_argument(
        "--expect-device",
        metavar="FINGERPRINT",
        help="the device key fingerprint the ledger must carry",
    )
    p.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="a head witnessed earlier; a ledger that ends before it is truncated",
    )
    every_signature_flag(p)
    json_flag(p)

    settings.register(sub, _add)
    keys_commands.register(sub, _add)
    upload_commands.register(sub, _add)
    org_admin.register_device(sub, _add)
    org = _add(sub, "org", "the organisation's side: keys, policy, collector, ingest, audit", None)
    osub = org.add_subparsers(
        dest="org_action", metavar="ACTION", required=True, parser_class=_Parser
    )
    org_admin.register(osub, _add)
    collector.register(osub, _add)
    ingest.register(osub, _add)
    report_check.register(org_audit.register(osub, _add), _add)
    org_subject.register(osub, _add)
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)  # the recorder's log file may take more
    handler.setFormatter(logging.Formatter("cleartrace: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _reader_gone() -> int:
    """`cleartrace status | head -1`: the reader left; end quietly, as a Unix
    tool ended by SIGPIPE does (Python ignores the signal and raises instead).

    stdout is pointed at /dev/null so the interpreter's last flush of what is
    still buffered does not complain at exit.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None, *, tray: TrayLauncher = _no_tray) -> int:
    """Run one command; returns the exit code. `tray` starts the tray app (the
    default command); without it, asking for the tray is a usage error."""
    parser = build_parser(tray)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        if args.command is None:
            args = parser.parse_args(["tray"])
        else:
            parser.parse_args([args.command, "--help"])
    _configure_logging()
    try:
        result: int | None = args.func(args)
        sys.stdout.flush()  # here, so a closed pipe is seen inside this try
    except BrokenPipeError:
        return _reader_gone()
    except ClearTraceError as exc:
        print(f"cleartrace: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cleartrace: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback, and no message text that could carry content
        print(
            f"cleartrace: unexpected error ({type(exc).__name__}); please report it",
            file=sys.stderr,
        )
        return 2
    return result or 0
