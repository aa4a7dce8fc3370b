"""The CLI's commands: each parses nothing, makes one domain call and prints.

Each takes the parsed `argparse.Namespace` and returns an exit code (None = 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cleartrace.capture.display import check_display
from cleartrace.capture.select import backend
from cleartrace.categories import Category, parse_categories
from cleartrace.consent import exclusions, state
from cleartrace.consent.ledger import read_records
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.verify import parse_head, verify_export
from cleartrace.control import request
from cleartrace.durations import parse_duration
from cleartrace.errors import NoConsent, RecorderNotRunning, UsageError
from cleartrace.home import Home
from cleartrace.paths import Paths, private_file
from cleartrace.recorder import Recorder
from cleartrace.review.text import reconstruct
from cleartrace.status import collect_status
from cleartrace.store.db import connect

Args = argparse.Namespace

log = logging.getLogger(__name__)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@contextmanager
def _home(*, create: bool = False) -> Iterator[Home]:
    home = Home.open(Paths.from_env(), create=create)
    try:
        yield home
    finally:
        home.close()


def _records(paths: Paths) -> list[dict[str, Any]]:
    """Ledger records, read without any key (they are public, signed data)."""
    if not paths.db.exists():
        return []
    conn = connect(paths.db)
    try:
        return read_records(conn)
    finally:
        conn.close()


def _poke_recorder(paths: Paths) -> None:
    """Tell a running recorder to re-read consent and exclusions now."""
    with suppress(RecorderNotRunning):
        request(paths.socket, "reload")


# -- status and consent -------------------------------------------------------


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
    if not granted:
        print(
            "\nnothing is recorded without consent; to start:\n"
            "  cleartrace consent give --category keys ...   (or --all)\n"
            "  cleartrace record"
        )


def consent_show(args: Args) -> None:
    current = state.consent_from_records(_records(Paths.from_env())).as_dict()
    if args.json:
        emit_json({"policy": DEFAULT_POLICY.reference(), "consent": current})
        return
    print(f"policy: {DEFAULT_POLICY.id} v{DEFAULT_POLICY.version}")
    for category in Category:
        print(f"  {category.value:<14} {current.get(category.value, 'not asked')}")


def consent_change(args: Args) -> None:
    cats = frozenset(Category) if args.all else parse_categories(args.categories)
    act = {"give": state.give, "refuse": state.refuse, "withdraw": state.withdraw}[args.action]
    with _home(create=True) as home:
        act(home.ledger, cats, DEFAULT_POLICY)
        granted = state.consent_from_records(home.ledger.records()).granted()
    _poke_recorder(home.paths)
    names = ", ".join(sorted(c.value for c in granted)) or "none"
    print(f"consent now given for: {names}", file=sys.stderr)


# -- recording ------------------------------------------------------------------


def _log_to_home(paths: Paths) -> None:
    """The recorder's log file: 0600, events and errors only, never content."""

    if not paths.log.exists():
        import os

        os.close(private_file(paths.log))
    handler = logging.FileHandler(paths.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def record(args: Args) -> None:
    paths = Paths.from_env()
    seconds = None if args.duration is None else parse_duration(args.duration)
    if not state.consent_from_records(_records(paths)).granted():
        raise NoConsent(
            "nothing to record: no category has consent; "
            "run 'cleartrace consent give --all' or 'cleartrace consent give --category keys ...'"
        )
    check_display()
    chosen = backend()
    with _home(create=False) as home:
        _log_to_home(paths)
        rec = Recorder(home, chosen, DEFAULT_POLICY)

        def _stop(signum: int, frame: FrameType | None) -> None:
            rec.stop()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        print("recording; Ctrl+C stops (pause with 'cleartrace pause')", file=sys.stderr)
        rec.run(seconds)


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
    conn = connect(paths.db) if paths.db.exists() else None
    try:
        rows = exclusions.list_exclusions(conn, DEFAULT_POLICY)
    finally:
        if conn is not None:
            conn.close()
    if args.json:
        emit_json([{"app": app, "source": source} for app, source in rows])
        return
    for app, source in rows:
        print(f"{app:<40} {source}")


def exclude_change(args: Args) -> None:
    change = exclusions.add_exclusion if args.action == "add" else exclusions.remove_exclusion
    with _home(create=True) as home:
        change(home.ledger, args.app, DEFAULT_POLICY)
    _poke_recorder(home.paths)


# -- sessions ---------------------------------------------------------------------


def _session_row(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "start": _time(info.started_ns),
        "end": _time(info.ended_ns),
        "state": info.state,
        "counts": info.counts,
        "applications": info.applications,
    }


def sessions_list(args: Args) -> None:
    with _home() as home:
        rows = [_session_row(s) for s in home.store.list_sessions()]
    if args.json:
        emit_json(rows)
        return
    if not rows:
        print("no sessions", file=sys.stderr)
    for r in rows:
        counts = " ".join(f"{k}={v}" for k, v in sorted(r["counts"].items()))
        print(f"{r['id'][:12]}  {r['start']}  {r['end']}  {r['state']:<9} {counts}")


def sessions_show(args: Args) -> None:
    with _home() as home:
        info = home.store.session(args.id)
        out = _session_row(info)
        if args.text:
            streams = reconstruct(home.store.read_events(info.id))
            out["text"] = [{"app": s.app, "title": s.title, "text": s.text} for s in streams]
    if args.json:
        emit_json(out)
        return
    for key in ("id", "start", "end", "state"):
        print(f"{key + ':':<14}{out[key]}")
    print(f"{'counts:':<14}{json.dumps(out['counts'], sort_keys=True)}")
    print(f"{'applications:':<14}{', '.join(out['applications']) or '-'}")
    for s in out.get("text", []):
        label = s["app"] or "unknown application"
        if s["title"]:
            label += f" — {s['title']}"
        print(f"--- {label}")
        print(s["text"])


def sessions_delete(args: Args) -> None:
    with _home() as home:
        info = home.store.session(args.id)
        home.store.delete_session(
            info.id, lambda conn: home.ledger.append_in(conn, "session.deleted", session=info.id)
        )
    print(f"session {info.id} deleted", file=sys.stderr)


# -- ledger and audit -----------------------------------------------------------------


def ledger_show(args: Args) -> None:
    records = _records(Paths.from_env())
    if args.json:
        emit_json(records)
        return
    for r in records:
        extra = {k: v for k, v in r.items() if k not in {"v", "seq", "time", "kind", "prev", "sig"}}
        print(f"{r['seq']:>5}  {r['time']}  {r['kind']:<20} {json.dumps(extra, sort_keys=True)}")


def ledger_export(args: Args) -> None:
    out = Path(args.out)
    with _home() as home:
        home.ledger.export(out)
        head = home.ledger.head()
    if head:
        print(f"exported {head[0]} records to {out}; head {head[0]}:{head[1]}", file=sys.stderr)


def audit_verify(args: Args) -> None:
    head = None if args.head is None else parse_head(args.head)
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8") as fh:
            report = verify_export(fh, expect_device=args.expect_device, head=head)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    if args.json:
        emit_json(report.as_dict())
        return
    print(
        f"ok: {report.records} records, device {report.device}, "
        f"head {report.head_seq}:{report.head_hash}"
    )
