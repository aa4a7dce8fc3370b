"""What the detectors find is left out of what leaves, unless the person releases it.

A person who never opens the review window is still protected: when a
session's bundle is built, every span the detectors find in the policy's
`auto_redact` kinds is taken out of the events that leave (the same events a
redaction of it would remove), while the person's own copy stays whole for
their review. The ledger says per kind how many spans went (`upload.redacted`).

The person can release a detection they know is not personal data (an order
number that reads like a phone number); it is then uploaded as typed, and the
ledger says so (`detection.released`). A release names the detection by its
kind and the times of the first and last event behind it, never by what was
typed; those times do not move when other events of the session are redacted,
so a release keeps naming the same typing. If they do move (a redaction cut
into the detection itself), the release no longer matches and the span is
withheld again: doubt withholds.

Each application's streams are searched joined as well: an address typed in
part, then another window visited, then the rest typed in the first window
is one detection in two parts, withheld (and released) as one.

Review and upload search the same kinds (`Policy.detected`), so what review
marks "removed before upload" is exactly what the upload removes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.errors import UsageError
from cleartrace.events import Event
from cleartrace.review.pii import Finding, detect
from cleartrace.review.redaction import across_streams, interval_covering, texts_of
from cleartrace.review.text import EventsAt, Stream, reconstruct
from cleartrace.store.reading import SessionInfo
from cleartrace.store.redaction import KEPT_KINDS
from cleartrace.store.sessions import Store

__all__ = [
    "RELEASED",
    "WITHHELD",
    "Detection",
    "Withholding",
    "detections",
    "release",
    "released_in",
    "scrub_titles",
    "typed_away",
    "withhold",
]

#: Ledger kinds: a bundle left detections out; the person released one.
WITHHELD = "upload.redacted"
RELEASED = "detection.released"

#: (kind, first event's time, last event's time) as a release records them.
ReleaseKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding, where it is in the text and which events are behind it."""

    stream: int  # from 1
    finding: Finding
    positions: frozenset[int]
    #: {"start", "end"}: wall-clock times (RFC 3339, µs) of its first and last event.
    interval: dict[str, str]
    #: Whether the upload leaves it out (a withheld kind, not released).
    withheld: bool

    @property
    def key(self) -> ReleaseKey:
        return (self.finding.category.value, self.interval["start"], self.interval["end"])


def released_in(records: Iterable[Mapping[str, Any]], session_id: str) -> frozenset[ReleaseKey]:
    """The detections of a session the person released, from its ledger."""
    return frozenset(
        (str(r["pii"]), str(r["interval"]["start"]), str(r["interval"]["end"]))
        for r in records
        if r.get("kind") == RELEASED and r.get("session") == session_id
    )


def detections(
    events: Sequence[Event] | EventsAt,
    policy: Policy,
    *,
    started_ns: int,
    anchor_ns: int,
    released: frozenset[ReleaseKey] = frozenset(),
    streams: Sequence[Stream] | None = None,
) -> list[list[Detection]]:
    """Per text stream, what the detectors of `policy.detected` find.

    `started_ns`/`anchor_ns` put event times on the wall clock (the session's
    start and the monotonic time it was taken at); `streams` may be passed
    when the caller reconstructed them already from the same `events`, and
    then `events` need only give the events the streams name (`Placed`).
    """
    withheld = frozenset(policy.withheld)
    texts = texts_of(events, streams)

    def detection(number: int, finding: Finding, positions: Iterable[int]) -> Detection:
        kept = frozenset(p for p in positions if int(events[p].kind) not in KEPT_KINDS)
        times = [events[p].t_ns - anchor_ns + started_ns for p in kept]
        interval = interval_covering(min(times), max(times))
        key = (finding.category.value, interval["start"], interval["end"])
        hidden = finding.category in withheld and key not in released
        return Detection(number, finding, kept, interval, withheld=hidden)

    out: list[list[Detection]] = []
    for number, stream in enumerate(texts, 1):
        out.append(
            [
                detection(number, finding, stream.footprint(finding.start, finding.end))
                for finding in detect(
                    stream.text, app=stream.app, title=stream.title, categories=policy.detected
                )
            ]
        )
    for found in across_streams(texts, policy.detected):
        # One detection typed in parts (another window was visited between):
        # shown in each part, withheld and released as one.
        positions: set[int] = set()
        for i, part in found:
            positions |= texts[i].footprint(part.start, part.end)
        for i, part in found:
            out[i].append(detection(i + 1, part, positions))
    for stream_found in out:
        stream_found.sort(key=lambda d: (d.finding.start, d.finding.end))
    return out


@dataclass(frozen=True, slots=True)
class Withholding:
    """What a bundle leaves out: event positions, spans per kind, and when."""

    positions: frozenset[int]
    spans: dict[str, int]
    #: The wall-clock times of the first and last event left out (None: none).
    interval: dict[str, str] | None

    @property
    def empty(self) -> bool:
        return not self.positions

    def __or__(self, other: Withholding) -> Withholding:
        spans = Counter(self.spans) + Counter(other.spans)
        ends = [i for i in (self.interval, other.interval) if i is not None]
        interval = (
            {"start": min(i["start"] for i in ends), "end": max(i["end"] for i in ends)}
            if ends
            else None
        )
        return Withholding(self.positions | other.positions, dict(sorted(spans.items())), interval)


def withhold(found: Iterable[Iterable[Detection]]) -> Withholding:
    """What the upload leaves out of `detections(...)`'s result."""
    positions: set[int] = set()
    spans: Counter[str] = Counter()
    starts, ends = [], []
    seen: set[ReleaseKey] = set()
    for stream in found:
        for d in stream:
            if d.withheld and d.key not in seen:  # a detection in parts counts once
                seen.add(d.key)
                positions |= d.positions
                spans[d.finding.category.value] += 1
                starts.append(d.interval["start"])
                ends.append(d.interval["end"])
    interval = {"start": min(starts), "end": max(ends)} if starts else None
    return Withholding(frozenset(positions), dict(sorted(spans.items())), interval)


def typed_away(
    events: Sequence[Event],
    policy: Policy,
    *,
    started_ns: int,
    anchor_ns: int,
    streams: Sequence[Stream] | None = None,
) -> Withholding:
    """What the detectors of the withheld kinds find in typing that was
    deleted again (an address typed, then erased with BackSpace): it is not in
    the text review shows, but its key presses would leave. They are left out,
    with their releases and the deletions that erased only them; none of it can
    be released (review does not show it: doubt withholds)."""
    withheld = frozenset(policy.withheld)
    positions: set[int] = set()
    spans: Counter[str] = Counter()
    for stream in reconstruct(events) if streams is None else streams:
        text, behind = stream.typed()
        if not withheld or text == stream.text:
            continue  # nothing deleted: the search of the text itself covers it
        remaining = {p for sources in stream.sources for p in sources}
        for f in detect(text, app=stream.app, title=stream.title, categories=withheld):
            # What is still in the text is found (or not) there; what was
            # typed after the deletion may run on in this search ("...orgbye").
            presses = {p for cell in behind[f.start : f.end] for p in cell} - remaining
            if not presses:
                continue
            positions |= stream.erased_with(presses)
            spans[f.category.value] += 1
    positions = {p for p in positions if int(events[p].kind) not in KEPT_KINDS}
    if not positions:
        return Withholding(frozenset(), {}, None)
    times = [events[p].t_ns - anchor_ns + started_ns for p in positions]
    interval = interval_covering(min(times), max(times))
    return Withholding(frozenset(positions), dict(sorted(spans.items())), interval)


def scrub_titles(events: Sequence[Event], policy: Policy) -> tuple[list[Event], dict[str, int]]:
    """`events` with what the detectors find of the withheld kinds cut out of
    window titles ("Inbox - jane@example.org" → "Inbox - ⟦email⟧"), and how
    many spans of each kind went (on every focus event that carried them). A
    title is not typed text a person reviews span by span: nothing in it is
    released."""
    withheld = frozenset(policy.withheld)
    seen: dict[str, tuple[str, list[str]]] = {}
    spans: Counter[str] = Counter()
    out = list(events)
    for i, event in enumerate(out):
        title = event.title
        if not title or not withheld:
            continue
        if title not in seen:
            found = [f for f in detect(title, categories=policy.detected) if f.category in withheld]
            cut = title
            for f in sorted(found, key=lambda f: f.start, reverse=True):
                cut = f"{cut[: f.start]}⟦{f.category.value}⟧{cut[f.end :]}"
            seen[title] = (cut, [f.category.value for f in found])
        cut, kinds = seen[title]
        if kinds:
            spans.update(kinds)
            out[i] = event._replace(title=cut)
    return out, dict(sorted(spans.items()))


def release(
    store: Store,
    ledger: Ledger,
    info: SessionInfo,
    found: Sequence[Sequence[Detection]],
    stream: int,
    start: int,
    end: int,
) -> Detection:
    """Ledger that the detection at `start:end` of text stream `stream` (from
    1) of `found` (this session's `detections`) is released for upload; a
    bundle of the session already built without it goes with the same commit.

    Raises:
        UsageError: the session is being recorded or was uploaded already, or
            no withheld detection is at exactly that span.
    """
    here = found[stream - 1] if 1 <= stream <= len(found) else []
    at = [d for d in here if (d.finding.start, d.finding.end) == (start, end)]
    if not at:
        raise UsageError(
            f"nothing was detected at stream {stream} {start}:{end} of session {info.id[:12]}; "
            f"'cleartrace sessions show {info.id[:12]} --pii' lists what was"
        )
    detection = at[0]
    if not detection.withheld:
        raise UsageError(
            f"the {detection.finding.category.value} at stream {stream} {start}:{end} is "
            "uploaded as typed already (released before, or a kind the policy does not remove)"
        )
    store.release(
        info.id,
        lambda conn: ledger.append_in(
            conn,
            RELEASED,
            session=info.id,
            pii=detection.finding.category.value,
            interval=detection.interval,
        ),
    )
    return detection
