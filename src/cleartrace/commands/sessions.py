"""Commands on recorded sessions: list, show, delete."""

from __future__ import annotations

import json
import sys
from typing import Any

from cleartrace.commands.common import Args, emit_json, fmt_time, open_home
from cleartrace.review.text import reconstruct


def _session_row(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "start": fmt_time(info.started_ns),
        "end": fmt_time(info.ended_ns),
        "state": info.state,
        "counts": info.counts,
        "applications": info.applications,
    }


def sessions_list(args: Args) -> None:
    with open_home() as home:
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
    with open_home() as home:
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
    with open_home() as home:
        info = home.store.session(args.id)
        home.store.delete_session(
            info.id, lambda conn: home.ledger.append_in(conn, "session.deleted", session=info.id)
        )
    print(f"session {info.id} deleted", file=sys.stderr)
