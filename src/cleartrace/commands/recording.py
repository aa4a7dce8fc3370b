"""Commands around recording: status, consent, the recorder, pause, exclusions."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from cleartrace.capture.display import check_display
from cleartrace.capture.select import backend
from cleartrace.categories import Category, parse_categories
from cleartrace.commands.common import Args, emit_json, open_home, poke_recorder, read_ledger
from cleartrace.consent import exclusions, state
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.control import request
from cleartrace.durations import parse_duration
from cleartrace.errors import NoConsent, PolicyRefused
from cleartrace.paths import Paths, log_to_home
from cleartrace.recorder import Recorder
from cleartrace.status import collect_status
from cleartrace.upload.alarm import alarm_text


def status(args: Args) -> None:
    snap = collect_status(Paths.from_env())
    if args.json:
        emit_json(snap)
        return
    print(f"state:        {snap['state']}")
    print(f"display:      {snap['display']['detail']}")
    keys = snap["key_storage"]
    print(
        f"key storage:  {keys['backend']} ({keys['location']})"
        if keys
        else "key storage:  not set up (nothing recorded yet)"
    )
    print(f"home:         {snap['home']}")
    granted = [c for c, s in snap["consent"].items() if s == "given"]
    print(f"consent:      {', '.join(granted) if granted else 'none given'}")
    print(f"hooks:        {', '.join(snap['hooks']) if snap['hooks'] else 'none installed'}")
    rec = snap["recorder"]
    if rec and rec.get("paused_until"):
        print(f"paused until: {rec['paused_until']}")
    if snap["ledger_alarm"]:
        print(f"alarm:        {alarm_text(snap['ledger_alarm'])}")
    if not granted:
        print(
            "\nnothing is recorded without consent; to start:\n"
            "  cleartrace consent give --category keys ...   (or --all)\n"
            "  cleartrace record"
        )


def consent_show(args: Args) -> None:
    paths = Paths.from_env()
    policy = active_policy(paths)
    current = state.consent_from_records(read_ledger(paths), policy).as_dict()
    if args.json:
        emit_json({"policy": policy.reference(), "consent": current})
        return
    print(f"policy: {policy.id} v{policy.version}")
    for category in Category:
        print(f"  {category.value:<14} {current.get(category.value, 'not asked')}")


def _policy_for(action: str, paths: Paths) -> Policy:
    """The policy an act of consent is recorded under.

    Withdrawal is never blocked (see consent/state.py), not even by an
    installed policy that no longer verifies: it is then recorded under the
    built-in default, and the person is told why.
    """
    try:
        return active_policy(paths)
    except PolicyRefused as exc:
        if action != "withdraw":
            raise
        print(
            f"cleartrace: {exc}\ncleartrace: the withdrawal is recorded anyway, "
            f"under the built-in policy {DEFAULT_POLICY.id} v{DEFAULT_POLICY.version}",
            file=sys.stderr,
        )
        return DEFAULT_POLICY


def consent_change(args: Args) -> None:
    cats = frozenset(Category) if args.all else parse_categories(args.categories)
    act = {"give": state.give, "refuse": state.refuse, "withdraw": state.withdraw}[args.action]
    with open_home(create=True) as home:
        policy = _policy_for(args.action, home.paths)
        act(home.ledger, cats, policy)
        granted = state.consent_from_records(home.ledger.records(), policy).granted()
    poke_recorder(home.paths)
    names = ", ".join(sorted(c.value for c in granted)) or "none"
    print(f"consent now given for: {names}", file=sys.stderr)


# -- recording ------------------------------------------------------------------


def record(args: Args) -> None:
    paths = Paths.from_env()
    seconds = None if args.duration is None else parse_duration(args.duration)
    policy = active_policy(paths)
    if not state.consent_from_records(read_ledger(paths), policy).granted():
        raise NoConsent(
            f"nothing to record: no category has consent under the policy in force "
            f"({policy.id} v{policy.version}); run 'cleartrace consent give --all' or "
            "'cleartrace consent give --category keys ...'"
        )
    check_display()
    chosen = backend()
    with open_home(create=False) as home:
        log_to_home(paths)
        rec = Recorder(home, chosen)

        def _stop(signum: int, frame: FrameType | None) -> None:
            rec.stop()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        print("recording; Ctrl+C stops (pause with 'cleartrace pause')", file=sys.stderr)
        # Approved sessions leave in the background while enrolled (see upload/uploader.py).
        from cleartrace.upload.uploader import UPLOAD_INTERVAL, BackgroundUploader

        uploads = BackgroundUploader(paths, home.keys, interval=UPLOAD_INTERVAL)
        uploads.start()
        try:
            rec.run(seconds)
        finally:
            uploads.stop()


def pause(args: Args) -> None:
    seconds = None if args.for_ is None else parse_duration(args.for_)
    reply = request(Paths.from_env().socket, "pause", for_s=seconds)
    until = reply["status"]["paused_until"]
    print(f"paused until {until}" if until else "paused until resumed", file=sys.stderr)


def resume(args: Args) -> None:
    request(Paths.from_env().socket, "resume")
    print("recording resumed", file=sys.stderr)


# -- exclusions -------------------------------------------------------------------


def exclude_list(args: Args) -> None:
    paths = Paths.from_env()
    if not paths.db.exists():
        rows = exclusions.list_exclusions(None, active_policy(paths))
    else:
        with open_home() as home:  # the names are sealed: reading them needs the keys
            personal = exclusions.PersonalExclusions.open(home.ledger, home.keys.master)
            rows = exclusions.list_exclusions(personal, active_policy(paths))
    if args.json:
        emit_json([{"app": app, "source": source} for app, source in rows])
        return
    for app, source in rows:
        print(f"{app:<40} {source}")


def exclude_change(args: Args) -> None:
    change = exclusions.add_exclusion if args.action == "add" else exclusions.remove_exclusion
    with open_home(create=True) as home:
        personal = exclusions.PersonalExclusions.open(home.ledger, home.keys.master)
        change(home.ledger, personal, args.app, active_policy(home.paths))
    poke_recorder(home.paths)
