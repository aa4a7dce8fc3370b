"""One bundle's rows under its device's coverage: the per-bundle work of ingest.

Ingest decides once per device what its ledger allows (a `Coverage` and each
bundle's coverage key, org/ingest.py); what is left is per bundle and needs
nothing but that bundle, its coverage and the organisation's key: open it
(when its events are not at hand already), number its events, keep what
coverage keeps (org/raw_timing.py) and shape the kept events into both
tables' rows (org/bundle_rows.py). `bundle_work` is that step. The
in-process engine calls it in a loop; the Ray engine (org/ingest_ray.py)
calls it in its workers; either way the rows and the rejections are the
same, and the dataset is written by the one process that holds its lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from cleartrace.consent.coverage import Coverage
from cleartrace.org.bundle_reader import BundleReader, FleetBundle
from cleartrace.org.bundle_rows import bundle_rows, with_index
from cleartrace.org.dataset import BundleEntry
from cleartrace.org.raw_timing import RAW_TIMING, RAW_TIMING_DETAIL, covered

__all__ = ["Derived", "bundle_work"]


@dataclass(frozen=True, slots=True)
class Derived:
    """A bundle's manifest entry and its rows per table, ready to be written."""

    entry: BundleEntry
    tables: dict[str, pa.Table]


def bundle_work(
    reader: BundleReader, item: FleetBundle, coverage: Coverage, key: str
) -> Derived | None:
    """`item`'s rows under `coverage` (`key` is its coverage key, as the manifest
    keeps it); None when it is rejected (told to `reader.reject`).

    The events kept from opening the bundle for its ledger are used and let go;
    without them the bundle is read and opened again."""
    events = item.events
    if events is None:
        body = reader.open(item)
        if body is None:
            return None
        events = body.events
    item.events = None
    # Numbered as the bundle holds them: lineage names these positions even
    # where ingest re-times (and so reorders) the events.
    events = with_index(events)
    outcome = covered(
        events,
        item.header,
        coverage,
        session=item.session,
        head_seq=item.head[0],
        base_seq=item.base[0],
    )
    if outcome is None:
        reader.reject(item.name, item.device, RAW_TIMING, RAW_TIMING_DETAIL)
        return None
    rows = bundle_rows(
        outcome.events,
        coverage,
        device=item.device,
        subject=item.subject,
        session=item.session,
        bundle=item.name,
        head_seq=item.head[0],
        held=events,
    )
    entry = BundleEntry(
        device=item.device,
        subject=item.subject,
        session=item.session,
        key=key,
        digest=rows.digest(outcome.digest),
        rows=outcome.kept,
        actions=rows.actions,
        dropped=outcome.dropped,
        titles_removed=outcome.titles_removed,
        violations=outcome.violations,
    )
    return Derived(entry, rows.tables)
