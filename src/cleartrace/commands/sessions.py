"""Commands on recorded sessions: list, show, redact, approve, hold, delete,
forget, and the own-data export."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleartrace.actions import recording, sessions
from cleartrace.commands.common import Args, emit_json, fmt_time, open_home
from cleartrace.consent.removal import NOT_KEPT
from cleartrace.durations import parse_duration, parse_instant
from cleartrace.errors import UsageError
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.activity import MINUTE_NS
from cleartrace.review.pii import PiiCategory
from cleartrace.review.redaction import Selection
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState

#: Why the session being recorded cannot be reviewed yet, and how to end it.
_LIVE = (
    "being recorded: it can be reviewed, approved or deleted once it ends; "
    "'cleartrace sessions end-current' ends it now"
)


def _session_row(info: SessionInfo, auto_approve_ns: int | None) -> dict[str, Any]:
    return {
        "id": info.id,
        "start": fmt_time(info.started_ns),
        "end": fmt_time(info.ended_ns),
        "state": info.state,
        "auto_approve": fmt_time(auto_approve_ns),
        "counts": info.counts,
        "applications": info.applications,
    }


def sessions_list(args: Args) -> None:
    rows = [_session_row(s, due) for s, due in sessions.list_at(Paths.from_env())]
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
        if r["state"] == SessionState.RECORDING:
            print(f"    {_LIVE}")


def _text_rows(home: Home, info: SessionInfo, *, pii: bool) -> list[dict[str, Any]]:
    rows = []
    for number, (stream, findings) in enumerate(sessions.streams(home, info.id, pii=pii), 1):
        row: dict[str, Any] = {
            "stream": number,
            "app": stream.app,
            "title": stream.title,
            "text": stream.text,
        }
        if findings is not None:
            row["pii"] = [
                {
                    "category": d.finding.category.value,
                    "start": d.finding.start,
                    "end": d.finding.end,
                    "confidence": round(d.finding.confidence, 2),
                    "detector": d.finding.detector,
                    "withheld": d.withheld,
                }
                for d in findings
            ]
        rows.append(row)
    return rows


def _activity_rows(home: Home, info: SessionInfo) -> list[dict[str, Any]]:
    """Per minute of the session, on the wall clock: counts and exclusion shading."""
    first, minutes = sessions.timed_activity(home, info.id)
    return [
        {
            "minute": fmt_time(first + m.minute * MINUTE_NS)[:-4] + "Z",
            "keys": m.keys,
            "moves": m.moves,
            "clicks": m.clicks,
            "scrolls": m.scrolls,
            "excluded": m.excluded,
        }
        for m in minutes
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
        upload = "removed before upload" if f["withheld"] else "uploaded as typed"
        print(
            f"    {f['category']:<16} {f['start']}:{f['end']}  "
            f"confidence {f['confidence']:.2f}  ({f['detector']})  {upload}"
        )


def sessions_show(args: Args) -> None:
    with open_home() as home:
        info, due = sessions.session(home, args.id)
        out = _session_row(info, due)
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
            out["text"] = _text_rows(home, info, pii=args.pii)
        if args.activity:
            out["activity"] = _activity_rows(home, info)
    if args.json:
        emit_json(out)
        return
    for key in ("id", "start", "end", "state"):
        print(f"{key + ':':<14}{out[key]}")
    if out["state"] == SessionState.PENDING:
        print(f"{'approves:':<14}{out['auto_approve']} unless held")
    if out["state"] == SessionState.RECORDING:
        print(f"{'':<14}{_LIVE}")
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


def sessions_end_current(args: Args) -> None:
    ended = recording.end_session(Paths.from_env())
    if ended is None:
        print("no session is being recorded: the next input begins one", file=sys.stderr)
        return
    short = ended.id[:12]
    if not ended.kept:
        print(f"session {short} ended; {NOT_KEPT}", file=sys.stderr)
        return
    print(ended.id)
    print(
        f"session {short} ended and waits for your review "
        f"('cleartrace sessions show {short}'); the next input begins a new session",
        file=sys.stderr,
    )


def sessions_delete(args: Args) -> None:
    with open_home() as home:
        info = sessions.delete(home, args.id)
    print(f"session {info.id} deleted", file=sys.stderr)


# -- redaction -----------------------------------------------------------------------


def _parse_span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    if not sep or not start.isdigit() or not end.isdigit():
        raise UsageError(f"'{text}' is not a span; write it as START:END, e.g. 10:24")
    if int(start) >= int(end):
        raise UsageError(f"span {text} is empty or inverted: START must be below END")
    return int(start), int(end)


def _pii_categories(names: list[str] | None) -> tuple[PiiCategory, ...] | None:
    """The categories asked for; None: those the policy flags for review."""
    if not names:
        return None
    known = {c.value: c for c in PiiCategory}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown PII category {unknown[0]!r}; choose from {', '.join(known)}")
    return tuple(known[n] for n in names)


def _selection(home: Home, info: SessionInfo, args: Args) -> Selection:
    if args.span is not None:
        start, end = _parse_span(args.span)
        return sessions.select_span(home, info.id, args.stream, start, end)
    if args.match is not None:
        return sessions.select_match(home, info.id, args.match)
    if args.pii:
        return sessions.select_pii(home, info.id, _pii_categories(args.category))
    if args.from_ is None or args.to is None:
        raise UsageError("a time range needs both --from and --to")
    began = datetime.fromtimestamp(info.started_ns / 1e9, UTC)
    lo, hi = parse_instant(args.from_, began), parse_instant(args.to, began)
    if hi <= lo:
        raise UsageError("the time range is empty or inverted: --from must be before --to")
    return sessions.select_time(home, info.id, int(lo.timestamp() * 1e9), int(hi.timestamp() * 1e9))


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
        done = sessions.redact(home, chosen)
    if args.json:
        emit_json({"session": info.id, "dry_run": False, "removed": done.removed})
        return
    print(f"removed {counts} from session {info.id[:12]} for good", file=sys.stderr)


def sessions_release(args: Args) -> None:
    start, end = _parse_span(args.span)
    with open_home() as home:
        info, done = sessions.release_detection(home, args.id, args.stream, start, end)
    kind = done.finding.category.value
    if args.json:
        emit_json({"session": info.id, "stream": args.stream, "span": [start, end], "pii": kind})
        return
    print(
        f"released the {kind} at stream {args.stream} {start}:{end} of session {info.id[:12]}: "
        "it is uploaded as typed (the ledger records that you released it)",
        file=sys.stderr,
    )


def sessions_review(args: Args) -> None:
    act = sessions.approve if args.action == "approve" else sessions.hold
    with open_home() as home:
        info, changed = act(home, args.id)
    state = SessionState.APPROVED if args.action == "approve" else SessionState.HELD
    print(
        f"session {info.id[:12]} {'is now' if changed else 'was already'} {state}", file=sys.stderr
    )


# -- forgetting and export -------------------------------------------------------------


def forget(args: Args) -> None:
    done = recording.forget(Paths.from_env(), parse_duration(args.last))
    print(recording.forgotten_text(done, args.last), file=sys.stderr)


def export(args: Args) -> None:
    out = Path(args.out)
    started = time.monotonic()
    with open_home() as home:
        n = sessions.export(home, out)
    print(
        f"exported {n} sessions, the ledger and your consent to {out} "
        f"in {time.monotonic() - started:.1f} s; it is not encrypted: keep it safe",
        file=sys.stderr,
    )
