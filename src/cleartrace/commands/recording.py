"""Commands around recording: status, consent, the recorder, pause, exclusions."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections.abc import Iterable
from types import FrameType

from cleartrace.actions import consent, recording, settings
from cleartrace.actions.status import collect
from cleartrace.capture.select import backend
from cleartrace.categories import USUAL, Category, parse_categories
from cleartrace.commands.common import Args, emit_json, open_home
from cleartrace.consent.notice_text import facts, notice_json
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.removal import NOT_KEPT
from cleartrace.durations import parse_duration
from cleartrace.paths import Paths, log_to_home
from cleartrace.runtime import Runtime
from cleartrace.upload.alarm import alarm_text


def status(args: Args) -> None:
    snap = collect(Paths.from_env(), os.environ)
    if args.json:
        emit_json(snap.to_json())
        return
    print(f"state:        {snap.state}")
    print(f"display:      {snap.display}")
    keys = snap.key_storage
    print(
        f"key storage:  {keys['backend']} ({keys['location']})"
        if keys
        else "key storage:  not set up (nothing recorded yet)"
    )
    print(f"home:         {snap.home}")
    print(f"device:       {snap.device or 'no key yet (made when you first give consent)'}")
    granted = [c for c, s in snap.consent.items() if s == "given"]
    print(f"consent:      {', '.join(granted) if granted else 'none given'}")
    print(f"hooks:        {', '.join(snap.hooks) if snap.hooks else 'none installed'}")
    if snap.paused_until:
        print(f"paused until: {snap.paused_until}")
    if snap.ledger_alarm:
        print(f"alarm:        {alarm_text(snap.ledger_alarm)}")
    if not granted:
        print(
            "\nnothing is recorded without consent; to start:\n"
            "  cleartrace consent give --category keys ...   (or --all)\n"
            "  cleartrace record"
        )


def consent_show(args: Args) -> None:
    policy, current = consent.show(Paths.from_env())
    if args.json:
        emit_json(
            {"policy": policy.reference(), "consent": current.as_dict(), **notice_json(policy)}
        )
        return
    print(f"policy: {policy.id} v{policy.version}")
    print(textwrap.fill(policy.purpose, width=79))
    print()
    for fact in facts(policy):
        print(textwrap.fill(f"{fact.label}: {fact.text}", width=79, subsequent_indent="  "))
    print()
    print("consent:")
    for category, answer in current.as_dict().items():
        print(f"  {category:<14} {answer}")


def consent_change(args: Args) -> None:
    if not args.all:
        cats = parse_categories(args.categories)
    else:
        # `--all` withdraws everything, but gives and refuses the usual categories
        # only: typing rhythm is a separate choice, made by naming it.
        cats = frozenset(Category) if args.action == "withdraw" else frozenset(USUAL)
    with open_home(create=True) as home:
        if args.action == "withdraw":
            done = consent.withdraw(home, cats)
            if done.refused is not None:
                # Withdrawal is never blocked, not even by a policy that no longer verifies.
                print(
                    f"cleartrace: {done.refused}\ncleartrace: the withdrawal is recorded anyway, "
                    f"under the built-in policy {DEFAULT_POLICY.id} v{DEFAULT_POLICY.version}",
                    file=sys.stderr,
                )
            granted = consent.current(home.ledger, done.policy).granted()
            # What went first, then what stays: the person checks both at a glance.
            print(
                f"consent withdrawn for: {_names(done.withdrawn)}; "
                f"still given for: {_names(granted)}",
                file=sys.stderr,
            )
            return
        act = consent.give if args.action == "give" else consent.refuse
        granted = act(home, cats).granted()
    if args.action == "refuse":
        print(f"consent refused for: {_names(cats)}; given for: {_names(granted)}", file=sys.stderr)
        return
    print(f"consent now given for: {_names(granted)}", file=sys.stderr)


def _names(categories: Iterable[Category]) -> str:
    return ", ".join(sorted(c.value for c in categories)) or "none"


# -- recording ------------------------------------------------------------------


def record(args: Args) -> None:
    paths = Paths.from_env()
    seconds = None if args.duration is None else parse_duration(args.duration)
    recording.check_can_record(paths)
    chosen = backend()
    with open_home(create=False) as home:
        log_to_home(paths)
        runtime = Runtime(paths)

        def _stop(signum: int, frame: FrameType | None) -> None:
            runtime.stop()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        print("recording; Ctrl+C stops (pause with 'cleartrace pause')", file=sys.stderr)
        kept = recording.record(runtime, home, chosen, seconds)
    print("recording stopped" if kept else f"recording stopped; {NOT_KEPT}", file=sys.stderr)


def pause(args: Args) -> None:
    seconds = None if args.for_ is None else parse_duration(args.for_)
    until = recording.pause(Paths.from_env(), seconds)
    print(f"paused until {until}" if until else "paused until resumed", file=sys.stderr)


def resume(args: Args) -> None:
    recording.resume(Paths.from_env())
    print("recording resumed", file=sys.stderr)


# -- exclusions -------------------------------------------------------------------


def exclude_list(args: Args) -> None:
    rows = settings.list_exclusions(Paths.from_env())
    if args.json:
        emit_json([{"app": app, "source": source} for app, source in rows])
        return
    for app, source in rows:
        print(f"{app:<40} {source}")


def exclude_change(args: Args) -> None:
    adding = args.action == "add"
    change = settings.exclude if adding else settings.include
    with open_home(create=True) as home:
        app = change(home, args.app)
    said = "no longer recorded while it has focus" if adding else "recorded again (if consented)"
    print(f"{app} is {said}", file=sys.stderr)
