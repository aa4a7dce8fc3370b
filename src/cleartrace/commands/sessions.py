"""Commands on recorded sessions: list, show, redact, approve, hold, delete,
forget, and the own-data export."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cleartrace.commands.common import Args, emit_json, fmt_time, open_home
from cleartrace.consent.policy import Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.control import request
from cleartrace.durations import parse_duration, parse_instant
from cleartrace.errors import RecorderNotRunning, UsageError
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.preferences import hold_days
from cleartrace.review import approval, redaction
from cleartrace.review.activity import MINUTE_NS, activity_per_minute
from cleartrace.review.export import export_all
from cleartrace.review.pii import PiiCategory, detect
from cleartrace.review.text import reconstruct
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState


def _session_row(info: SessionInfo, hold: int) -> dict[str, Any]:
    return {
        "id": info.id,
        "start": fmt_time(info.started_ns),
        "end": fmt_time(info.ended_ns),
        "state": info.state,
        "auto_approve": fmt_time(approval.auto_approve_at(info, hold)),
        "counts": info.counts,
        "applications": info.applications,
    }


def _settled(home: Home) -> int:
    """Approve what the hold period approves before showing any state; returns the
    hold period in force (days)."""
    hold = hold_days(home.paths, active_policy(home.paths))
    approval.settle(home.store, home.ledger, hold)
    return hold


def sessions_list(args: Args) -> None:
    with open_home() as home:
        hold = _settled(home)
        rows = [_session_row(s, hold) for s in home.store.list_sessions()]
    if args.json:
        emit_json(rows)
        return
    if not rows:
        print("no sessions", file=sys.stderr)
    for r in rows:
        counts = " ".join(f"{k}={v}" for k, v in sorted(r["counts"].items()))
        due = (
            f" (approves itself {r['auto_approve']})" if r["state"] == SessionState.PENDING else ""
        )
        print(f"{r['id'][:12]}  {r['start']}  {r['end']}  {r['state']:<9} {counts}{due}")


def _text_rows(home: Home, info: SessionInfo, policy: Policy, *, pii: bool) -> list[dict[str, Any]]:
    rows = []
    for number, stream in enumerate(reconstruct(home.store.read_events(info.id)), 1):
        row: dict[str, Any] = {
            "stream": number,
            "app": stream.app,
            "title": stream.title,
            "text": stream.text,
        }
        if pii:
            row["pii"] = [
                {
                    "category": f.category.value,
                    "start": f.start,
                    "end": f.end,
                    "confidence": round(f.confidence, 2),
                    "detector": f.detector,
                }
                for f in detect(
                    stream.text,
                    app=stream.app,
                    title=stream.title,
                    categories=policy.pii,
                )
            ]
        rows.append(row)
    return rows


def _activity_rows(home: Home, info: SessionInfo) -> list[dict[str, Any]]:
    """Per minute of the session, on the wall clock: counts and exclusion shading."""
    events = home.store.read_events(info.id)
    if not events:
        return []
    started, anchor = home.store.anchors(info.id)
    first = started + events[0].t_ns - anchor
    return [
        {
            "minute": fmt_time(first + m.minute * MINUTE_NS)[:-4] + "Z",
            "keys": m.keys,
            "moves": m.moves,
            "clicks": m.clicks,
            "scrolls": m.scrolls,
            "excluded": m.excluded,
        }
        for m in activity_per_minute(events)
    ]


def _print_stream(s: dict[str, Any]) -> None:
    label = s["app"] or "unknown application"
    if s["title"]:
        label += f" — {s['title']}"
    print(f"--- stream {s['stream']}: {label}")
    text = s["text"]
    if "pii" not in s:
        print(text)
        return
    # Mark findings inline: ⟦category: text⟧, from the end so offsets hold.
    for f in sorted(s["pii"], key=lambda f: f["start"], reverse=True):
        inner = text[f["start"] : f["end"]]
        text = f"{text[: f['start']]}⟦{f['category']}: {inner}⟧{text[f['end'] :]}"
    print(text)
    for f in s["pii"]:
        print(
            f"    {f['category']:<16} {f['start']}:{f['end']}  "
            f"confidence {f['confidence']:.2f}  ({f['detector']})"
        )


def sessions_show(args: Args) -> None:
    with open_home() as home:
        hold = _settled(home)
        info = home.store.session(args.id)
        out = _session_row(info, hold)
        out["redactions"] = [
            {
                "method": r.method,
                "from": fmt_time(r.from_ns),
                "to": fmt_time(r.to_ns),
                "removed": r.removed,
            }
            for r in home.store.redactions(info.id)
        ]
        if args.text or args.pii:
            out["text"] = _text_rows(home, info, active_policy(home.paths), pii=args.pii)
        if args.activity:
            out["activity"] = _activity_rows(home, info)
    if args.json:
        emit_json(out)
        return
    for key in ("id", "start", "end", "state"):
        print(f"{key + ':':<14}{out[key]}")
    if out["state"] == SessionState.PENDING:
        print(f"{'approves:':<14}{out['auto_approve']} unless held")
    print(f"{'counts:':<14}{json.dumps(out['counts'], sort_keys=True)}")
    print(f"{'applications:':<14}{', '.join(out['applications']) or '-'}")
    for r in out["redactions"]:
        removed = ", ".join(f"{k} {v}" for k, v in r["removed"].items())
        print(f"{'redacted:':<14}{r['method']} {r['from']} – {r['to']}: {removed}")
    for s in out.get("text", []):
        _print_stream(s)
    if "activity" in out:
        print(f"{'minute':<18}{'keys':>6}{'moves':>7}{'clicks':>7}{'scrolls':>8}")
        for row in out["activity"]:
            shade = "  excluded" if row["excluded"] else ""
            print(
                f"{row['minute']:<18}{row['keys']:>6}{row['moves']:>7}"
                f"{row['clicks']:>7}{row['scrolls']:>8}{shade}"
            )


def sessions_delete(args: Args) -> None:
    with open_home() as home:
        info = home.store.session(args.id)
        home.store.delete_session(
            info.id, lambda conn: home.ledger.append_in(conn, "session.deleted", session=info.id)
        )
    print(f"session {info.id} deleted", file=sys.stderr)


# -- redaction -----------------------------------------------------------------------


def _parse_span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    if not sep or not start.isdigit() or not end.isdigit():
        raise UsageError(f"'{text}' is not a span; write it as START:END, e.g. 10:24")
    if int(start) >= int(end):
        raise UsageError(f"span {text} is empty or inverted: START must be below END")
    return int(start), int(end)


def _pii_categories(names: list[str] | None, home: Home) -> tuple[PiiCategory, ...]:
    """The categories asked for; by default those the policy has review flag."""
    if not names:
        return active_policy(home.paths).pii
    known = {c.value: c for c in PiiCategory}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown PII category {unknown[0]!r}; choose from {', '.join(known)}")
    return tuple(known[n] for n in names)


def _selection(home: Home, info: SessionInfo, args: Args) -> redaction.Selection:
    events = home.store.read_events(info.id)
    if args.span is not None:
        start, end = _parse_span(args.span)
        return redaction.by_span(info.id, events, args.stream, start, end)
    if args.match is not None:
        return redaction.by_match(info.id, events, args.match)
    if args.pii:
        return redaction.by_pii(info.id, events, _pii_categories(args.category, home))
    if args.from_ is None or args.to is None:
        raise UsageError("a time range needs both --from and --to")
    began = datetime.fromtimestamp(info.started_ns / 1e9, UTC)
    lo, hi = parse_instant(args.from_, began), parse_instant(args.to, began)
    if hi <= lo:
        raise UsageError("the time range is empty or inverted: --from must be before --to")
    return redaction.by_time(
        home.store, info.id, events, int(lo.timestamp() * 1e9), int(hi.timestamp() * 1e9)
    )


def sessions_redact(args: Args) -> None:
    if args.category and not args.pii:
        raise UsageError("--category chooses PII categories; use it with --pii")
    with open_home() as home:
        info = home.store.session(args.id)
        chosen = _selection(home, info, args)
        counts = ", ".join(f"{k} {v}" for k, v in chosen.counts.items()) or "nothing"
        if args.dry_run or chosen.empty:
            verb = "would remove" if not chosen.empty else "nothing matches; would remove"
            if args.json:
                emit_json({"session": info.id, "dry_run": True, "removed": chosen.counts})
            else:
                print(f"{verb} {counts} from session {info.id[:12]}", file=sys.stderr)
                for number, start, end in chosen.spans:
                    print(f"  stream {number} {start}:{end}", file=sys.stderr)
            return
        done = redaction.apply(home.store, home.ledger, chosen)
    if args.json:
        emit_json({"session": info.id, "dry_run": False, "removed": done.removed})
        return
    print(f"removed {counts} from session {info.id[:12]} for good", file=sys.stderr)


def sessions_review(args: Args) -> None:
    act = approval.approve if args.action == "approve" else approval.hold
    with open_home() as home:
        info = home.store.session(args.id)
        changed = act(home.store, home.ledger, info.id)
    state = SessionState.APPROVED if args.action == "approve" else SessionState.HELD
    print(
        f"session {info.id[:12]} {'is now' if changed else 'was already'} {state}", file=sys.stderr
    )


# -- forgetting and export -------------------------------------------------------------


def forget(args: Args) -> None:
    seconds = parse_duration(args.last)
    paths = Paths.from_env()
    try:
        # A running recorder closes its session first, forgets, and goes on.
        reply = request(paths.socket, "forget", timeout=120.0, seconds=seconds)
        removed = int(reply["removed"])
    except RecorderNotRunning:
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        with open_home() as home:
            removed = sum(r.count for r in redaction.forget_since(home.store, home.ledger, since))
    print(f"forgot the last {args.last}: {removed} events removed for good", file=sys.stderr)


def export(args: Args) -> None:
    out = Path(args.out)
    started = time.monotonic()
    with open_home() as home:
        n = export_all(home.store, home.ledger, active_policy(home.paths), out)
    print(
        f"exported {n} sessions, the ledger and your consent to {out} "
        f"in {time.monotonic() - started:.1f} s; it is not encrypted: keep it safe",
        file=sys.stderr,
    )
