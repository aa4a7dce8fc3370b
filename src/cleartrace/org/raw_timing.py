"""Key timing at ingest: raw timing only under `typing_rhythm` consent, evened out once withdrawn.

How a person types identifies them (upload/retiming.py), so a device sends
its key events re-timed ("even" in the bundle header) unless the person
consented to `typing_rhythm`. Ingest holds a bundle that says "raw" to the
device's verified ledger, as folded by `coverage_of`:

- a key event at a time `typing_rhythm` was not consented (never given,
  refused or withdrawn by then, or recording paused) rejects the bundle with
  `raw-timing`: a device must not send it, and the organisation must not
  keep it;
- raw events captured at or before a later withdrawal of `typing_rhythm` are
  re-timed with the device's own `retime` before rows are built: the
  organisation stops using the rhythm, as it stops using any withdrawn data.

An "even" bundle is taken as it is (re-timing is idempotent, and a device
that lies about its timing lies with its signature on the header). A v1
header was written before timing was evened out and before anyone could
consent to `typing_rhythm`: its events are re-timed here rather than refused,
so a session recorded then stays in the dataset without its rhythm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage
from cleartrace.consent.coverage_arrow import BIT, step
from cleartrace.events import Kind
from cleartrace.upload.bundle_header import timing_of
from cleartrace.upload.retiming import retime

__all__ = ["RAW_TIMING", "RAW_TIMING_DETAIL", "held_timing"]

#: The rejection reason of a raw bundle without `typing_rhythm` consent.
RAW_TIMING = "raw-timing"
RAW_TIMING_DETAIL = (
    "the bundle carries key timing as typed, but the device's ledger has no typing_rhythm "
    "consent (or recording was paused) when some of its keys were pressed; the device must "
    "send such sessions evened out"
)
_BIT = BIT[Category.TYPING_RHYTHM]
_KEYS = pa.array([int(Kind.KEY_DOWN), int(Kind.KEY_UP)], pa.uint8())


def held_timing(events: pa.Table, header: Mapping[str, Any], coverage: Coverage) -> pa.Table | None:
    """`events` with the timing the organisation may hold, or None when the
    bundle carries raw timing its device's ledger does not allow (`RAW_TIMING`)."""
    if timing_of(header) != "raw" or events.num_rows == 0:
        return events
    if header.get("v") == 1:
        return retime(events)
    keys = pc.is_in(events.column("kind"), value_set=_KEYS)
    t = events.column("t_ns").filter(keys).combine_chunks()
    if len(t) == 0:
        return events
    allowed = pc.bit_wise_and(step(t, coverage.changes), pa.scalar(_BIT, pa.int32()))
    if pc.any(pc.equal(allowed, 0)).as_py():
        return None
    withdrawn = coverage.withdrawn.get(_BIT)
    if withdrawn is not None and pc.min(t).as_py() <= withdrawn:
        return retime(events)
    return events
