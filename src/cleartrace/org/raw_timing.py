"""Key and pointer timing at ingest: raw only under `typing_rhythm`, evened out once withdrawn.

How a person types and moves the pointer identifies them
(upload/retiming.py), so a device sends its key and pointer events re-timed
("even" in the bundle header) unless the person consented to
`typing_rhythm`. Ingest holds a bundle to the device's verified ledger, as
folded by `coverage_of`, and applies that coverage (`covered`):

- a raw key or pointer event at a time `typing_rhythm` was not consented
  (never given, refused or withdrawn by then, or recording paused) rejects
  the bundle with `raw-timing`: a device must not send it, and the
  organisation must not keep it;
- raw events captured at or before a later withdrawal of `typing_rhythm` are
  judged by coverage on their raw times (a redaction's interval is in capture
  time), then what is kept is re-timed with the device's own `retime` and
  judged again at the new times: the organisation stops using the rhythm, as
  it stops using any withdrawn data, and no row lies where the ledger drops it;
- an "even" bundle is re-timed again (idempotent: nothing changes for what a
  device re-timed, and a modified device that only says "even" loses the
  rhythm here all the same), then judged on the span of times each event may
  have been captured at (`retiming.raw_spans`), since re-timing moved its
  keys: a redaction overlapping a run drops the whole run.

A v1 header was written before timing was
evened out and before anyone could consent to `typing_rhythm`: its events
are re-timed here rather than refused, so a session recorded then stays in
the dataset without its rhythm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage, time_ns
from cleartrace.consent.coverage_arrow import BIT, SPAN, Outcome, step
from cleartrace.events import Kind
from cleartrace.upload.bundle_header import timing_of
from cleartrace.upload.retiming import raw_spans, retime

__all__ = ["RAW_TIMING", "RAW_TIMING_DETAIL", "covered"]

#: The rejection reason of a raw bundle without `typing_rhythm` consent.
RAW_TIMING = "raw-timing"
RAW_TIMING_DETAIL = (
    "the bundle carries key or pointer timing as captured, but the device's ledger has no "
    "typing_rhythm consent (or recording was paused) when some of those events were captured; "
    "the device must send such sessions evened out"
)
_BIT = BIT[Category.TYPING_RHYTHM]
#: The kinds whose timing `retime` evens out: keys and pointer.
_TIMED = pa.array(
    [
        int(k)
        for k in (
            Kind.KEY_DOWN,
            Kind.KEY_UP,
            Kind.MOVE,
            Kind.BUTTON_DOWN,
            Kind.BUTTON_UP,
            Kind.SCROLL,
        )
    ],
    pa.uint8(),
)
_NEVER = 2**63 - 1


def covered(
    events: pa.Table,
    header: Mapping[str, Any],
    coverage: Coverage,
    *,
    session: str | None,
    head_seq: int,
    base_seq: int,
) -> Outcome | None:
    """What `coverage` keeps of a bundle's `events`, with the timing the
    organisation may hold; None when the bundle carries raw timing its
    device's ledger does not allow (`RAW_TIMING`).

    Coverage judges capture times. Raw events are judged as they are and
    re-timed afterwards where they must be; re-timed ("even") events are judged
    on the span of times each may have been captured at (`raw_spans`)."""
    timing = timing_of(header)
    if timing == "even" and events.num_rows:
        events = _with_spans(events, header)
    must_retime = timing == "raw" and events.num_rows > 0 and _must_retime(events, header, coverage)
    if must_retime is None:
        return None
    outcome = coverage.apply(events, session=session, head_seq=head_seq, base_seq=base_seq)
    if not must_retime:
        return outcome
    # Re-timing moves the kept events (by at most a run's length): judged again
    # at their new times, none lies where the ledger would have it dropped.
    again = coverage.apply(
        retime(outcome.events), session=session, head_seq=head_seq, base_seq=base_seq
    )
    return _both(outcome, again)


def _both(first: Outcome, second: Outcome) -> Outcome:
    """The outcome of `second` applied to what `first` kept: counts added up."""

    def added(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
        return {k: a.get(k, 0) + b.get(k, 0) for k in dict.fromkeys([*a, *b])}

    return Outcome(
        events=second.events,
        dropped=added(first.dropped, second.dropped),
        titles_removed=added(first.titles_removed, second.titles_removed),
        violations=added(first.violations, second.violations),
        digest=hashlib.sha256(f"{first.digest}:{second.digest}".encode()).hexdigest(),
    )


def _must_retime(events: pa.Table, header: Mapping[str, Any], coverage: Coverage) -> bool | None:
    """Whether raw `events` are to be re-timed (a v1 header, or `typing_rhythm`
    withdrawn since), or None when they may not be held at all."""
    if header.get("v") == 1:
        return True
    timed = pc.is_in(events.column("kind"), value_set=_TIMED)
    t = events.column("t_ns").filter(timed).combine_chunks()
    if len(t) == 0:
        return False
    allowed = pc.bit_wise_and(step(t, coverage.changes), pa.scalar(_BIT, pa.int32()))
    if pc.any(pc.equal(allowed, 0)).as_py():
        return None
    withdrawn = coverage.withdrawn.get(_BIT)
    return withdrawn is not None and pc.min(t).as_py() <= withdrawn


def _with_spans(events: pa.Table, header: Mapping[str, Any]) -> pa.Table:
    """Events a header calls re-timed, re-timed here again (a no-op on what a
    device re-timed; what a device only says it re-timed loses its rhythm here),
    with the `SPAN` columns for coverage."""
    events = retime(events)
    low, high = raw_spans(events, _session_end(header))
    return events.append_column(SPAN[0], low).append_column(SPAN[1], high)


def _session_end(header: Mapping[str, Any]) -> int:
    """The end of the session a header names (its last run may last until then);
    without one, any time after."""
    interval = header.get("interval")
    try:
        return time_ns(str(interval["end"])) if isinstance(interval, dict) else _NEVER
    except (KeyError, ValueError):
        return _NEVER
