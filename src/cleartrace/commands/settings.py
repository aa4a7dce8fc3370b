"""`cleartrace settings`: the preferences the tray's Settings window edits."""

from __future__ import annotations

import sys
from typing import Any

from cleartrace.actions import settings as actions
from cleartrace.commands.common import Add, Args, emit_json, json_flag
from cleartrace.paths import Paths

__all__ = [
    "register",
    "settings_hold_days",
    "settings_hotkey",
    "settings_min_inputs",
    "settings_session_minutes",
    "settings_show",
]


def settings_show(args: Args) -> None:
    chosen = actions.current(Paths.from_env())
    days, low, high = chosen.hold_days, chosen.hold_days_min, chosen.hold_days_max
    hotkey = chosen.pause_hotkey or None
    if args.json:
        emit_json(
            {
                "hold_days": days,
                "hold_days_bounds": [low, high],
                "pause_hotkey": hotkey,
                "session_minutes": chosen.session_minutes,
                "session_minutes_bounds": [chosen.session_minutes_min, chosen.session_minutes_max],
                "min_inputs": chosen.min_inputs,
                "min_inputs_bounds": [0, chosen.min_inputs_max],
            }
        )
        return
    print(f"hold period:    {days} days (the policy allows {low} to {high})")
    print(f"pause hotkey:   {hotkey or 'none'}")
    print(
        f"session length: {chosen.session_minutes} minutes (you may choose "
        f"{chosen.session_minutes_min} to {chosen.session_minutes_max})"
    )
    print(
        f"keep a session: {chosen.min_inputs} inputs or more "
        "(key presses, clicks, scroll steps; 0 keeps every session)"
    )


def settings_hold_days(args: Args) -> None:
    actions.set_hold_days(Paths.from_env(), args.days)
    print(f"finished sessions now wait {args.days} days for your review", file=sys.stderr)


def settings_session_minutes(args: Args) -> None:
    actions.set_session_minutes(Paths.from_env(), args.minutes)
    print(
        f"a session now ends after {args.minutes} minutes and the next begins "
        "(a running recorder from its next session on)",
        file=sys.stderr,
    )


def settings_min_inputs(args: Args) -> None:
    actions.set_min_inputs(Paths.from_env(), args.count)
    print(
        "every session is now kept, even one without input"
        if args.count == 0
        else f"a session with fewer than {args.count} inputs (key presses, clicks, scroll "
        "steps) is no longer kept when it ends (a running recorder from its next session on)",
        file=sys.stderr,
    )


def settings_hotkey(args: Args) -> None:
    sequence = "" if args.none else args.keys
    actions.set_pause_hotkey(Paths.from_env(), sequence)
    said = f"the pause hotkey is {sequence}" if sequence else "no pause hotkey"
    print(f"{said} (a running tray takes it up when restarted)", file=sys.stderr)


def register(sub: Any, add: Add) -> None:
    """Add `settings show|hold-days|hotkey` to the top-level commands."""
    settings = add(
        sub,
        "settings",
        "show or change my preferences: hold period, session length, pause hotkey, ...",
        None,
    )
    ssub = settings.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(settings)
    )
    p = add(
        ssub,
        "show",
        "show the hold period, session length, pause hotkey and fewest inputs kept",
        settings_show,
    )
    json_flag(p)
    p = add(
        ssub,
        "hold-days",
        "how many days a finished session waits for review (within the policy's bounds)",
        settings_hold_days,
    )
    p.add_argument("days", type=int, metavar="N", help="days, e.g. 7")
    p = add(
        ssub,
        "session-minutes",
        "how long a session runs before the next begins, so it can be reviewed (15 to 240)",
        settings_session_minutes,
    )
    p.add_argument("minutes", type=int, metavar="N", help="minutes, e.g. 60 (the default)")
    p = add(
        ssub,
        "min-inputs",
        "the fewest key presses, clicks and scroll steps a session needs to be kept",
        settings_min_inputs,
    )
    p.add_argument(
        "count",
        type=int,
        metavar="N",
        help="inputs, e.g. 1 (the default: a session with none is not kept); 0 keeps every one",
    )
    p = add(ssub, "hotkey", "the global key that pauses and resumes recording", settings_hotkey)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("keys", nargs="?", metavar="KEYS", help="e.g. Ctrl+Alt+Shift+P")
    which.add_argument("--none", action="store_true", help="no pause hotkey")
