"""Joining batches by column and cutting them at an event: how compaction
turns a day of small batches into a few large ones (`codec.Recoder`)
without building a tuple per event."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from cleartrace.store._codec_batch import FOCUS, MASKS, Batch

__all__ = ["join", "split"]


def join(batches: Sequence[Batch]) -> Batch:
    """One batch of `batches` one after the other."""
    if len(batches) == 1:
        return batches[0]

    def cat(get: Callable[[Batch], list[Any]]) -> list[Any]:
        return list(chain.from_iterable(map(get, batches)))

    return Batch(
        b"".join(b.kinds for b in batches),
        cat(operator.attrgetter("us")),
        cat(operator.attrgetter("keys")),
        _cat4(batches, "pointer"),
        _cat4(batches, "places"),
        cat(operator.attrgetter("groups")),
        cat(operator.attrgetter("apps")),
        cat(operator.attrgetter("titles")),
        cat(operator.attrgetter("layouts")),
    )


def _cat4(batches: Sequence[Batch], name: str) -> list[list[int]]:
    get = operator.attrgetter(name)
    return [list(chain.from_iterable(get(b)[i] for b in batches)) for i in range(4)]


def split(batch: Batch, at: int) -> tuple[Batch, Batch]:
    """The first `at` events of a batch, and the rest."""
    head = batch.kinds[:at]
    key, ptr, place, layout, _ = (head.translate(m).count(1) for m in MASKS)
    focus = head.count(FOCUS)

    def cut(values: list[Any], i: int) -> tuple[list[Any], list[Any]]:
        return values[:i], values[i:]

    pairs = {
        "us": cut(batch.us, at),
        "keys": cut(batch.keys, key),
        "groups": cut(batch.groups, layout),
        "apps": cut(batch.apps, focus),
        "titles": cut(batch.titles, focus),
        "layouts": cut(batch.layouts, layout),
    }
    pointer = [cut(col, ptr) for col in batch.pointer]
    places = [cut(col, place) for col in batch.places]
    halves = []
    for side in (0, 1):
        halves.append(
            Batch(
                head if side == 0 else batch.kinds[at:],
                pairs["us"][side],
                pairs["keys"][side],
                [p[side] for p in pointer],
                [p[side] for p in places],
                pairs["groups"][side],
                pairs["apps"][side],
                pairs["titles"][side],
                pairs["layouts"][side],
            )
        )
    return halves[0], halves[1]
