"""Choosing what a redaction removes, and removing it for good.

A person points at text (a span of a stream, a pattern, detected PII) or at
time; this module turns that into the positions of the events behind it and
hands them to `Store.redact`, which re-seals the chunks without them, leaves a
content-free marker and writes the ledger record in the same transaction.
Choosing never changes anything, so a dry run is the same call without the
last step.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cleartrace.consent.ledger import Ledger
from cleartrace.errors import UsageError
from cleartrace.events import CATEGORY_OF_KIND, Event, Kind
from cleartrace.formats import rfc3339
from cleartrace.review.pii import Finding, PiiCategory, detect
from cleartrace.review.text import EventsAt, Stream, reconstruct
from cleartrace.store.redaction import KEPT_KINDS, Redaction
from cleartrace.store.session_state import SessionState
from cleartrace.store.sessions import Store

__all__ = [
    "Forgotten",
    "Selection",
    "across_streams",
    "apply",
    "by_match",
    "by_pii",
    "by_span",
    "by_time",
    "forget_since",
    "interval_covering",
    "texts_of",
]

_MAX_PATTERN = 1000


@dataclass(frozen=True, slots=True)
class Selection:
    """The events a redaction would remove and, for text, which spans they show.

    `spans` are (stream number from 1, start, end) in the reconstructed text;
    `preview` is what the person sees before confirming — their own text, on
    their own screen, never written anywhere.
    """

    session_id: str
    method: str
    positions: frozenset[int]
    spans: tuple[tuple[int, int, int], ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.positions


def texts_of(
    events: Sequence[Event] | EventsAt, streams: Sequence[Stream] | None
) -> Sequence[Stream]:
    """`streams` when the caller folded them already (then `events` need only
    give the events they name, `Placed`), else reconstructed from `events`.

    Raises:
        TypeError: neither streams nor the whole list of events.
    """
    if streams is not None:
        return streams
    if not isinstance(events, Sequence):
        raise TypeError("without streams, the text needs the whole list of events")
    return reconstruct(events)


def _select(
    session_id: str,
    method: str,
    events: Sequence[Event] | EventsAt,
    positions: Iterable[int],
    spans: Iterable[tuple[int, int, int]] = (),
) -> Selection:
    chosen = frozenset(p for p in positions if int(events[p].kind) not in KEPT_KINDS)
    counts: dict[str, int] = {}
    for p in chosen:
        category = CATEGORY_OF_KIND[events[p].kind]
        if category is not None:
            counts[category.value] = counts.get(category.value, 0) + 1
    return Selection(session_id, method, chosen, tuple(sorted(spans)), dict(sorted(counts.items())))


def _stream(streams: Sequence[Stream], number: int) -> Stream:
    if not 1 <= number <= len(streams):
        raise UsageError(
            f"there is no text stream {number}; this session has {len(streams)} "
            "(see 'cleartrace sessions show ID --text')"
        )
    return streams[number - 1]


def by_span(
    session_id: str,
    events: Sequence[Event] | EventsAt,
    number: int,
    start: int,
    end: int,
    *,
    streams: Sequence[Stream] | None = None,
) -> Selection:
    """The events behind characters [start, end) of text stream `number` (from 1);
    `streams`: as `texts_of` takes them.

    Raises:
        UsageError: no such stream, or the span is empty, inverted or outside its text.
    """
    stream = _stream(texts_of(events, streams), number)
    if not 0 <= start < end <= len(stream.text):
        raise UsageError(
            f"span {start}:{end} is not within stream {number}, which has "
            f"{len(stream.text)} characters (START < END, counted from 0)"
        )
    return _select(session_id, "span", events, stream.footprint(start, end), [(number, start, end)])


def by_match(
    session_id: str,
    events: Sequence[Event] | EventsAt,
    pattern: str,
    *,
    streams: Sequence[Stream] | None = None,
) -> Selection:
    """The events behind every match of a regular expression in the typed text
    (`streams`: as `texts_of` takes them).

    Raises:
        UsageError: the pattern is not a valid regular expression, or too long.
    """
    if len(pattern) > _MAX_PATTERN:
        raise UsageError(f"the pattern is longer than {_MAX_PATTERN} characters")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        # The position, not the pattern: it may itself be the secret.
        raise UsageError(f"invalid regular expression at position {exc.pos}: {exc.msg}") from None
    positions: set[int] = set()
    spans = []
    for number, stream in enumerate(texts_of(events, streams), 1):
        for match in regex.finditer(stream.text):
            if match.end() > match.start():
                positions |= stream.footprint(match.start(), match.end())
                spans.append((number, match.start(), match.end()))
    return _select(session_id, "match", events, positions, spans)


def by_pii(
    session_id: str,
    events: Sequence[Event] | EventsAt,
    categories: Iterable[PiiCategory] | None = None,
    *,
    streams: Sequence[Stream] | None = None,
) -> Selection:
    """The events behind everything the detectors flag (in `categories`, default
    all; `streams`: as `texts_of` takes them)."""
    wanted = None if categories is None else frozenset(categories)
    positions: set[int] = set()
    spans = []
    texts = texts_of(events, streams)
    for number, stream in enumerate(texts, 1):
        for finding in detect(stream.text, app=stream.app, title=stream.title, categories=wanted):
            positions |= stream.footprint(finding.start, finding.end)
            spans.append((number, finding.start, finding.end))
    for parts in across_streams(texts, wanted):  # typed in parts around another window
        for i, part in parts:
            positions |= texts[i].footprint(part.start, part.end)
            spans.append((i + 1, part.start, part.end))
    return _select(session_id, "pii", events, positions, spans)


def across_streams(
    texts: Sequence[Stream], categories: Iterable[PiiCategory] | None
) -> list[list[tuple[int, Finding]]]:
    """What the detectors find only in the text of one application's streams
    joined (the person typed in one window, visited another, went on typing),
    as its parts: (stream index, finding within that stream)."""
    apps: dict[str | None, list[int]] = {}
    for i, stream in enumerate(texts):
        if stream.text:
            apps.setdefault(stream.app, []).append(i)
    out: list[list[tuple[int, Finding]]] = []
    for indices in apps.values():
        if len(indices) < 2:
            continue
        bounds, at = [], 0
        for i in indices:
            bounds.append((i, at, at + len(texts[i].text)))
            at += len(texts[i].text)
        first = texts[indices[0]]
        joined = "".join(texts[i].text for i in indices)
        for f in detect(joined, app=first.app, title=first.title, categories=categories):
            parts = [
                (i, replace(f, start=max(f.start, lo) - lo, end=min(f.end, hi) - lo))
                for i, lo, hi in bounds
                if f.start < hi and lo < f.end
            ]
            if len(parts) > 1:
                out.append(parts)
    return out


def by_time(
    store: Store,
    session_id: str,
    events: Sequence[Event] | None,
    start_ns: int,
    end_ns: int,
) -> Selection:
    """Every event (all categories) stamped in [start_ns, end_ns) of wall-clock
    time; with `events` None, read from the store a chunk at a time.

    Raises:
        UsageError: the range is empty or inverted.
    """
    if end_ns <= start_ns:
        raise UsageError("the time range is empty or inverted: --from must be before --to")
    started, anchor = store.anchors(session_id)  # the events are decrypted already
    lo, hi = start_ns - started + anchor, end_ns - started + anchor
    if events is not None:
        positions = [i for i, event in enumerate(events) if lo <= event.t_ns < hi]
        return _select(session_id, "time", events, positions)
    found: dict[int, Event] = {}
    base = 0
    for chunk in store.event_chunks(session_id):
        for i, (t, kind, *_) in enumerate(chunk, base):
            if lo <= t < hi:
                found[i] = Event(t, Kind(kind))
        base += len(chunk)
    return _select(session_id, "time", found, found)


def _utc_us(ns: int, *, up: bool) -> str:
    """An RFC 3339 UTC time to the microsecond, rounded outwards so it covers `ns`."""
    us = -(-ns // 1000) if up else ns // 1000
    when = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
    return rfc3339(when, timespec="microseconds")


def interval_covering(from_ns: int, to_ns: int) -> dict[str, str]:
    """{start, end} as ledger records carry them: UTC to the microsecond,
    rounded outwards so that the interval covers both times."""
    return {"start": _utc_us(from_ns, up=False), "end": _utc_us(to_ns, up=True)}


def _record(ledger: Ledger) -> Callable[[sqlite3.Connection, Redaction], object]:
    def write(conn: sqlite3.Connection, redaction: Redaction) -> object:
        return ledger.append_in(
            conn,
            "session.redacted",
            session=redaction.session_id,
            method=redaction.method,
            events=redaction.count,
            categories=sorted(redaction.removed),
            interval=interval_covering(redaction.from_ns, redaction.to_ns),
        )

    return write


def apply(store: Store, ledger: Ledger, selection: Selection) -> Redaction:
    """Remove the selected events for good; the ledger records it in the same commit."""
    return store.redact(
        selection.session_id,
        selection.positions,
        method=selection.method,
        record=_record(ledger),
    )


@dataclass(frozen=True)
class Forgotten:
    """What forgetting removed: events, and how many sessions of each state
    lost some. Counts only: the person learns that an approved or uploaded
    session was touched (what it means for it), never what went."""

    events: int = 0
    #: Sessions that lost events, per their state (pending, approved, held, uploaded).
    sessions: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        # "removed" stays the total, as recorders of earlier versions sent it.
        return {"removed": self.events, "sessions": dict(self.sessions)}

    @classmethod
    def from_json(cls, reply: dict[str, object]) -> Forgotten:
        """A recorder's reply; one of an earlier version has no per-state counts."""
        raw = reply.get("sessions")
        counts = raw if isinstance(raw, dict) else {}
        removed = reply["removed"]
        if not isinstance(removed, int):
            raise ValueError("'removed' is not a count")
        return cls(removed, {str(k): int(v) for k, v in counts.items()})


def forget_since(store: Store, ledger: Ledger, since: datetime) -> Forgotten:
    """Remove every event stamped at or after `since`, in every closed session."""
    since_ns = int(since.timestamp() * 1e9)
    far = int((datetime.now(UTC) + timedelta(days=1)).timestamp() * 1e9)
    events, states = 0, Counter[str]()
    for info in store.list_sessions():
        if info.state == SessionState.RECORDING or (
            info.ended_ns is not None and info.ended_ns < since_ns
        ):
            continue
        positions = store.indices_between(info.id, since_ns, far)
        if positions:
            redaction = store.redact(info.id, positions, method="forget", record=_record(ledger))
            if redaction.count:
                events += redaction.count
                states[str(info.state)] += 1
    return Forgotten(events, dict(states))
