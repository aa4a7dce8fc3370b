"""Where the person's redactions took typing out of the text, so that review
can show that something went there (never what: it is gone).

A redaction records only its kinds, counts and the wall-clock times of the
first and last event it removed. Each stream covers the time from its focus
change to the next one; a removal of key events starting in that time cut
the stream's text right after the character typed last before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cleartrace.review.text import EventsAt, Stream

__all__ = ["removal_offsets"]


def removal_offsets(
    streams: Sequence[Stream], events: EventsAt, cuts_ns: Sequence[int]
) -> list[list[int]]:
    """For each stream, the sorted text offsets where typing was removed.

    `cuts_ns`: when each removal of key events began, on the events' own
    (monotonic) clock. An offset `k` means: between `text[k - 1]` and `text[k]`.
    `events` need only give the events the streams name (`Placed`).
    """
    out: list[list[int]] = []
    for number, stream in enumerate(streams):
        end = streams[number + 1].started_ns if number + 1 < len(streams) else None
        inside = [c for c in cuts_ns if c >= stream.started_ns and (end is None or c < end)]
        if not inside:
            out.append([])
            continue
        typed_at = [events[sources[0]].t_ns for sources in stream.sources]
        offsets = set()
        for cut in inside:
            before = [i for i, t in enumerate(typed_at) if t < cut]
            # After the character typed last before the cut (the cursor may have
            # moved, so not simply after as many characters as came before it).
            offsets.add(max(before, key=lambda i: typed_at[i]) + 1 if before else 0)
        out.append(sorted(offsets))
    return out
