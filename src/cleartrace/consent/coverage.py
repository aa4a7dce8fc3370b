"""What a device's ledger lets the organisation keep of its events, and why the rest goes.

`coverage_of(records)` folds one device's verified ledger (oldest first) into
a `Coverage`; `Coverage.apply(events, ...)` turns a bundle's event table into
the rows the dataset may hold (the Arrow masks are consent/coverage_arrow.py).
It is consent's verdict on rows, so both of its users share it: ingest, and
the device's uploader. The rules, in the order a dropped event is attributed to
them (docs/dataset.md has them for readers of the dataset):

1. **deleted** — a `session.deleted` record for the session drops every event
   of it, markers included.
2. **held** — a `session.held` record made after the bundle was built (its
   acknowledgement was lost, so the device still let the person hold it)
   drops every event of the bundle.
3. **superseded** — of a session in several bundles (the same lost
   acknowledgement, then a redaction and a new bundle), only the bundle with
   the greatest ledger head stays (`Coverage.with_bundles`).
4. **withdrawn** — a `consent.withdrawn` of a category at time T drops every
   event of that category captured at or before T, in any session of the
   device: the organisation stops using data whose consent was withdrawn.
   Events captured after a later `consent.given` stay.
5. **redacted** — a `session.redacted` record made after the bundle was built
   (its seq is greater than the bundle's `ledger.head.seq`) drops the
   session's events of its categories inside [interval.start, interval.end].
   Redactions made before are already absent from the bundle. Events whose
   times were re-timed carry the span they may have been captured in
   (coverage_arrow.SPAN): any overlap with the interval drops them.
6. **violation** — an event outside a consented, unpaused interval of its
   category. A category is consented from a `consent.given` naming it until
   a `consent.withdrawn` (or `consent.refused`) naming it; recording is paused
   from `recording.paused` until `recording.resumed` (`until` is only the
   planned end). Such events should not exist; they are dropped and reported.

7. **fields outside their kind** — `app` (app_focus data) and `title`
   (window_titles data) belong on focus events only, and each kind uses only
   its own integer fields (a key event `a`, a move `a`, `b`, ...). Anything
   else on an event (an application name on a key event, any content on a
   marker) was not written by the recorder: the field is cleared, the event
   kept as rules 1-6 decide, and the field reported as a violation of its
   category (markers' numbers under `MARKER`).

Markers (`EXCLUDED_START`/`EXCLUDED_END`) belong to no category and carry no
content: they stay unless their session is deleted. `session.shredded` is not
a deletion (the device removed its local copy after upload). A window title
is data of the `window_titles` category riding on an `app_focus` event: the
same rules 4-6 decide whether the title stays; when it may not, the event is
kept (if its own category allows) with its title removed.

Record times have milliseconds; an event exactly at a record's time is on
the record's side (consented from `given`, withdrawn at `withdrawn`, paused
from `paused`). Records are applied in ledger order: a record whose clock
went backwards takes effect at the previous record's time. The device's
uploader folds its ledger with this same `coverage_of` (upload/consented.py),
so it never sends what these rules would drop for a withdrawal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage_arrow import (
    BIT,
    Outcome,
    bits_of,
    select_rows,
    step,
    whole_outcome,
)

__all__ = [
    "COVERAGE_VERSION",
    "Coverage",
    "Redacted",
    "coverage_of",
    "time_ns",
]

#: Bumped when the rules change, so that re-runs re-evaluate every bundle.
COVERAGE_VERSION = 6

_MIN = -(2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_ns(text: str) -> int:
    """Nanoseconds since the epoch of a ledger time ('2026-12-02T10:15:00.123Z').

    Raises:
        ValueError: not a UTC time.
    """
    if not text.endswith("Z"):
        raise ValueError("not a UTC time")
    when = datetime.fromisoformat(text[:-1] + "+00:00")
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True, slots=True)
class Redacted:
    """A `session.redacted` record: categories (bits) removed in [start_ns, end_ns]."""

    seq: int
    session: str
    bits: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """One device's ledger folded into what the rules need.

    `changes` is the step function of the categories (bits) that may be
    recorded: from each (time_ns, bits) until the next; none before the first.
    `withdrawn` is the time of the latest withdrawal per category bit.
    """

    deleted: frozenset[str]
    withdrawn: Mapping[int, int]
    redactions: tuple[Redacted, ...]
    changes: tuple[tuple[int, int], ...]
    #: Digest of `changes` and `withdrawn`, shared by every bundle's `key`.
    device_digest: str = ""
    #: session -> seq of its latest `session.held` record.
    held: Mapping[str, int] = field(default_factory=dict)
    #: session -> (head seq, base seq) of the newest bundle holding it (set by
    #: ingest, `with_bundles`): an older bundle of a session is superseded.
    newest: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: The category bits consented after the last record, pauses aside.
    consented: int = 0
    #: category bit -> ((time_ns, seq), ...) of the `consent.given` records naming
    #: it, in ledger order: the consent an action was captured under.
    given: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def consented_now(self) -> frozenset[Category]:
        """The categories consented after the last record (a pause takes none back)."""
        return frozenset(c for c, bit in BIT.items() if self.consented & bit)

    def allowed_throughout(self, category: Category, start_ns: int, end_ns: int) -> bool:
        """Whether `category` was consented, and recording not paused, at every
        time from `start_ns` to `end_ns` (wall-clock ns): how the uploader decides
        that a session's key timing may leave as typed (`typing_rhythm`)."""
        bit = BIT[category]
        at_start = 0
        for when, bits in self.changes:
            if when > end_ns:
                break
            if when <= start_ns:
                at_start = bits
            elif not bits & bit:
                return False
        return bool(at_start & bit)

    def withdrawn_at(self) -> dict[Category, int]:
        """Each withdrawn category's latest withdrawal, at the time the rules take it."""
        return {c: self.withdrawn[bit] for c, bit in BIT.items() if bit in self.withdrawn}

    def with_bundles(self, bundles: Iterable[tuple[str | None, int, int]]) -> Coverage:
        """This coverage knowing every (session, head seq, base seq) bundle of the
        device; the newest bundle of a session is the one with the greatest head,
        then the greatest base.

        A session normally leaves in one bundle. It leaves twice only when the
        collector stored a bundle whose acknowledgement was lost and the person
        then redacted the session: the device bundles what is left again, and
        that newer bundle is the session as the person wants it.
        """
        newest: dict[str, tuple[int, int]] = {}
        for session, head_seq, base_seq in bundles:
            if session is not None:
                newest[session] = max((head_seq, base_seq), newest.get(session, (-1, -1)))
        return replace(self, newest=newest)

    def _whole(self, session: str | None, head_seq: int, base_seq: int) -> str | None:
        """The reason every event of such a bundle goes, or None."""
        if session is None:
            return None
        if session in self.deleted:
            return "deleted"
        if self.held.get(session, -1) > head_seq:
            # Held after the bundle was built: its acknowledgement was lost (else
            # the session could not be held), and the person does not want it out.
            return "held"
        if self.newest.get(session, (head_seq, base_seq)) > (head_seq, base_seq):
            return "superseded"
        return None

    def key(self, session: str | None, head_seq: int, base_seq: int = 0) -> str:
        """A digest of everything that decides the rows of a bundle of `session`
        built at ledger `head_seq`: equal keys, equal rows."""
        state = {
            "v": COVERAGE_VERSION,
            "device": self.device_digest or _digest(self.changes, self.withdrawn),
            "whole": self._whole(session, head_seq, base_seq),
            "redacted": [
                [r.bits, r.start_ns, r.end_ns] for r in self._redactions(session, head_seq)
            ],
        }
        return hashlib.sha256(json.dumps(state, separators=(",", ":")).encode()).hexdigest()

    def allows(
        self,
        t: pa.Array,
        category: Category,
        *,
        session: str | None,
        head_seq: int,
        end: pa.Array | None = None,
    ) -> pa.Array:
        """Per time of `t`, whether rules 4-6 keep data of `category` captured
        then in a bundle of `session` built at `head_seq`: consented and
        unpaused, not withdrawn, not redacted. With `end`, of a span [t, end]:
        at both ends. What ingest asks before a key row or an action may name
        the application (app_focus data) or the title it went to."""
        bit = BIT[category]
        cut = _redaction_steps(self._redactions(session, head_seq))
        kept = pc.greater(t, self.withdrawn.get(bit, _MIN))
        for times in (t,) if end is None else (t, end):
            consented = pc.not_equal(pc.bit_wise_and(step(times, self.changes), bit), 0)
            redacted = pc.not_equal(pc.bit_wise_and(step(times, cut), bit), 0)
            kept = pc.and_(kept, pc.and_not(consented, redacted))
        return kept

    def _redactions(self, session: str | None, head_seq: int) -> list[Redacted]:
        return [r for r in self.redactions if r.session == session and r.seq > head_seq]

    def apply(
        self, events: pa.Table, *, session: str | None, head_seq: int, base_seq: int = 0
    ) -> Outcome:
        """Drop what the rules cover from one bundle's events (`EVENT_SCHEMA`
        table; with the `SPAN` columns where their times were re-timed)."""
        whole = self._whole(session, head_seq, base_seq)
        if whole is not None:
            return whole_outcome(events, whole)
        redactions = self._redactions(session, head_seq)
        return select_rows(
            events,
            changes=self.changes,
            withdrawals=self.withdrawn,
            redaction_steps=_redaction_steps(redactions),
            redactions=[(r.bits, r.start_ns, r.end_ns) for r in redactions],
        )


def _digest(changes: Sequence[tuple[int, int]], withdrawn: Mapping[int, int]) -> str:
    state = [list(changes), sorted(withdrawn.items())]
    return hashlib.sha256(json.dumps(state, separators=(",", ":")).encode()).hexdigest()


def _redaction_steps(redactions: Sequence[Redacted]) -> list[tuple[int, int]]:
    """The union of closed redaction intervals as a step function of category bits."""
    bounds = sorted({r.start_ns for r in redactions} | {r.end_ns + 1 for r in redactions})
    return [(b, _or(r.bits for r in redactions if r.start_ns <= b <= r.end_ns)) for b in bounds]


def _or(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out |= v
    return out


def coverage_of(records: Iterable[Mapping[str, Any]]) -> Coverage:
    """Fold a device's verified ledger records, oldest first, into a `Coverage`.

    Kinds other than consent, pause/resume, deletion and redaction (and
    categories this version does not know) change nothing.

    Raises:
        ValueError: a record time or interval is not a UTC time (the ledger
            verifier refuses such records first).
    """
    deleted: set[str] = set()
    held: dict[str, int] = {}
    withdrawn: dict[int, int] = {}
    redactions: list[Redacted] = []
    changes: list[tuple[int, int]] = []
    given: dict[int, list[tuple[int, int]]] = {}
    consented, paused, last = 0, False, _MIN
    for record in records:
        kind = record.get("kind")
        when = max(time_ns(str(record["time"])), last)
        last = when
        if kind == "consent.given":
            bits = bits_of(record["categories"])
            consented |= bits
            for bit in (b for b in BIT.values() if bits & b):
                given.setdefault(bit, []).append((when, int(record["seq"])))
        elif kind in ("consent.withdrawn", "consent.refused"):
            bits = bits_of(record["categories"])
            consented &= ~bits
            if kind == "consent.withdrawn":
                for bit in BIT.values():
                    if bits & bit:
                        withdrawn[bit] = when
        elif kind == "recording.paused":
            paused = True
        elif kind == "recording.resumed":
            paused = False
        elif kind == "session.deleted":
            deleted.add(str(record["session"]))
            continue
        elif kind == "session.held":
            held[str(record["session"])] = int(record["seq"])
            continue
        elif kind == "session.redacted":
            interval = record["interval"]
            redactions.append(
                Redacted(
                    seq=int(record["seq"]),
                    session=str(record["session"]),
                    bits=bits_of(record["categories"]),
                    start_ns=time_ns(interval["start"]),
                    end_ns=time_ns(interval["end"]),
                )
            )
            continue
        else:
            continue
        allowed = 0 if paused else consented
        if changes and changes[-1][0] == when:
            changes[-1] = (when, allowed)
        elif not changes or changes[-1][1] != allowed:
            changes.append((when, allowed))
    return Coverage(
        deleted=frozenset(deleted),
        withdrawn=withdrawn,
        redactions=tuple(redactions),
        changes=tuple(changes),
        device_digest=_digest(changes, withdrawn),
        held=held,
        consented=consented,
        given={bit: tuple(points) for bit, points in given.items()},
    )
