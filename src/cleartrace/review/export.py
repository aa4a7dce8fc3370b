"""Own-data export (GDPR Art. 15 and 20): everything of mine, decrypted, for me.

One JSON document (format in docs/export-format.md): the device, the current
consent and policy, the whole ledger, and every session with its decrypted
events, its reconstructed text and the markers its redactions left. Events
are written one at a time, so an eight-hour session does not need its JSON
in memory twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cleartrace import __version__
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.consent.state import consent_from_records
from cleartrace.events import Event, Kind, char_of_keysym
from cleartrace.formats import rfc3339
from cleartrace.paths import write_private
from cleartrace.review.text import reconstruct
from cleartrace.store.reading import SessionInfo
from cleartrace.store.sessions import Store

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "event_json", "export_all", "key_name"]

EXPORT_FORMAT = "cleartrace-personal-export"
EXPORT_VERSION = 1


# Names of the non-printing keys people press most, as X spells them.
_KEY_NAMES = {
    0xFE03: "ISO_Level3_Shift",
    0xFF08: "BackSpace",
    0xFF09: "Tab",
    0xFF0D: "Return",
    0xFF1B: "Escape",
    0xFF50: "Home",
    0xFF51: "Left",
    0xFF52: "Up",
    0xFF53: "Right",
    0xFF54: "Down",
    0xFF55: "Page_Up",
    0xFF56: "Page_Down",
    0xFF57: "End",
    0xFF63: "Insert",
    0xFF8D: "KP_Enter",
    0xFFE1: "Shift_L",
    0xFFE2: "Shift_R",
    0xFFE3: "Control_L",
    0xFFE4: "Control_R",
    0xFFE5: "Caps_Lock",
    0xFFE9: "Alt_L",
    0xFFEA: "Alt_R",
    0xFFEB: "Super_L",
    0xFFEC: "Super_R",
    0xFFFF: "Delete",
    **{0xFFBE + n: f"F{n + 1}" for n in range(12)},
}


def key_name(keysym: int) -> str:
    """The character a keysym types, else its X name, else its number."""
    char = char_of_keysym(keysym)
    if char is not None:
        return char
    return _KEY_NAMES.get(keysym, f"0x{keysym:04x}")


def utc(ns: int) -> str:
    """Wall-clock nanoseconds as an RFC 3339 UTC time to the microsecond."""
    when = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000)
    return rfc3339(when, timespec="microseconds")


def event_json(event: Event, started_ns: int, anchor_mono_ns: int) -> dict[str, Any]:
    """One event as the export shows it: wall time, kind name, its own fields only."""
    out: dict[str, Any] = {
        "time": utc(started_ns + event.t_ns - anchor_mono_ns),
        "kind": event.kind.name.lower(),
    }
    kind = event.kind
    if kind in (Kind.KEY_DOWN, Kind.KEY_UP):
        out.update(keysym=event.a, key=key_name(event.a))
    elif kind is Kind.MOVE:
        out.update(x=event.a, y=event.b)
    elif kind in (Kind.BUTTON_DOWN, Kind.BUTTON_UP):
        out.update(x=event.a, y=event.b, button=event.c)
    elif kind is Kind.SCROLL:
        out.update(x=event.a, y=event.b, dx=event.c, dy=event.d)
    elif kind is Kind.FOCUS:
        out.update(app=event.app, title=event.title, x=event.a, y=event.b)
        out.update(width=event.c, height=event.d)
    elif kind is Kind.SCREEN:
        out.update(monitors=event.a, width=event.b, height=event.c, scale=event.d)
    elif kind is Kind.MONITOR:
        out.update(x=event.a, y=event.b, width=event.c, height=event.d)
    elif kind is Kind.LAYOUT:
        out.update(group=event.a, layout=event.app)
    return out


def _session_head(store: Store, info: SessionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "start": utc(info.started_ns),
        "end": None if info.ended_ns is None else utc(info.ended_ns),
        "state": info.state,
        "counts": info.counts,
        "applications": info.applications,
        "redactions": [
            {
                "at": utc(r.at_ns),
                "method": r.method,
                "from": utc(r.from_ns),
                "to": utc(r.to_ns),
                "removed": r.removed,
            }
            for r in store.redactions(info.id)
        ],
    }


def _session_chunks(store: Store, info: SessionInfo) -> Iterator[str]:
    """The JSON text of one session, in pieces."""
    events = store.read_events(info.id)
    started, anchor = store.anchors(info.id)
    head = _session_head(store, info)
    head["text"] = [
        {
            "app": s.app,
            "title": s.title,
            "start": utc(started + s.started_ns - anchor),
            "text": s.text,
        }
        for s in reconstruct(events)
    ]
    yield json.dumps(head, ensure_ascii=False, sort_keys=True)[:-1] + ', "events": ['
    for i, event in enumerate(events):
        yield ("\n    " if i == 0 else ",\n    ") + json.dumps(
            event_json(event, started, anchor), ensure_ascii=False, sort_keys=True
        )
    yield "\n  ]}"


def _write(fh: TextIO, store: Store, ledger: Ledger, policy: Policy) -> int:
    records = ledger.records()
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc(int(datetime.now(UTC).timestamp() * 10**9)),
        "software": f"cleartrace {__version__}",
        "device": ledger.device,
        "policy": policy.as_dict(),
        "consent": consent_from_records(records, policy).as_dict(),
        "ledger": records,
    }
    fh.write(json.dumps(header, ensure_ascii=False, sort_keys=True, indent=1)[:-2])
    fh.write(',\n "sessions": [')
    sessions = store.list_sessions()
    for n, info in enumerate(sessions):
        fh.write("\n  " if n == 0 else ",\n  ")
        for piece in _session_chunks(store, info):
            fh.write(piece)
    fh.write("\n ]\n}\n")
    return len(sessions)


def export_all(store: Store, ledger: Ledger, policy: Policy, out: Path) -> int:
    """Write the export to `out` (0600, all or nothing); returns the number of sessions.

    Raises:
        UsageError: `out` cannot be written.
        DiskFull: no room for it (nothing is left half-written).
        StoreError: a session cannot be read.
    """
    with write_private(out, "export") as fh:
        return _write(fh, store, ledger, policy)
