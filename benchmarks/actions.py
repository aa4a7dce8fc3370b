"""Action derivation benchmark: one bundle's kept events → its actions table, on one core.

Prints one JSON object: `derive_actions` (org/actions.py) over `--events`
events, median of `--runs`, pinned to one CPU (sched_setaffinity) with
Arrow's thread pools at one thread. Two deterministic inputs:

- `person`: shaped like a person's input, as benchmarks/pipeline.py's
  stream (≈60 % moves, 30 % key presses and releases, 7 % clicks, 3 %
  scroll steps, a focus change every ~500 events), with what an action table
  has to take apart: capitals and symbols under Shift, corrections
  (BackSpace, arrows), hotkeys (Ctrl+S, Ctrl+Shift+T), Return and Tab,
  double clicks, drags, a two-monitor screen layout;
- `ingest`: benchmarks/ingest.py's bundle events (random kinds in the same
  proportions, keys pressed and released at random).

`events_per_s` counts the events given to `derive_actions` per second of
wall time, `events_per_cpu_s` per second of the process's CPU time (the same
on an idle machine; on a shared one, what the derivation itself took).

Usage: python benchmarks/actions.py [--events N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from cleartrace.events import Kind, keysym_of_char
from cleartrace.org.actions import derive_actions
from cleartrace.upload.events_arrow import EVENT_SCHEMA

sys.path.insert(0, str(Path(__file__).parent))
from ingest import START, _ns, synthetic_ipc

MS = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-calc"]
SHIFT, CTRL, BACKSPACE, LEFT, RETURN, TAB = 0xFFE1, 0xFFE3, 0xFF08, 0xFF51, 0xFF0D, 0xFF09
Row = tuple[int, int, int, int, int, int, str | None, str | None]


def _tap(out: list[Row], t: int, keysym: int, rnd: random.Random) -> int:
    t += rnd.randint(40, 160) * MS
    out.append((t, Kind.KEY_DOWN, keysym, 0, 0, 0, None, None))
    t += rnd.randint(30, 90) * MS
    out.append((t, Kind.KEY_UP, keysym, 0, 0, 0, None, None))
    return t


def _keys(out: list[Row], t: int, rnd: random.Random) -> int:
    r = rnd.random()
    if r < 0.80:
        return _tap(out, t, rnd.choice(b"etaoinshrdlu etaoin ,."), rnd)
    if r < 0.88:
        return _tap(out, t, rnd.choice((BACKSPACE, BACKSPACE, LEFT)), rnd)
    held = [SHIFT] if r < 0.95 else [CTRL] if r < 0.98 else [CTRL, SHIFT]
    for key in held:
        t += rnd.randint(40, 100) * MS
        out.append((t, Kind.KEY_DOWN, key, 0, 0, 0, None, None))
    key = rnd.choice(b"ST") if r < 0.95 else ord("s") if r < 0.98 else ord("T")
    t = _tap(out, t, keysym_of_char(chr(key)), rnd)
    for key in reversed(held):
        t += rnd.randint(20, 60) * MS
        out.append((t, Kind.KEY_UP, key, 0, 0, 0, None, None))
    if rnd.random() < 0.05:
        t = _tap(out, t, rnd.choice((RETURN, TAB)), rnd)
    return t


def person(n: int, seed: int = 7) -> pa.Table:
    """`n` events of a person's input (module docstring)."""
    rnd = random.Random(seed)
    t = _ns(START)
    out: list[Row] = [
        (t, Kind.SCREEN, 2, 3840, 1080, 100, None, None),
        (t, Kind.MONITOR, 0, 0, 1920, 1080, None, None),
        (t, Kind.MONITOR, 1920, 0, 1920, 1080, None, None),
    ]
    x, y = 640, 400
    while len(out) < n:
        if len(out) % 500 == 0:
            app = rnd.choice(APPS)
            window = (rnd.randint(0, 3000), rnd.randint(0, 500), 800, 600)
            out.append((t, Kind.FOCUS, *window, app, f"{app} document {rnd.randint(1, 40)}"))
            continue
        r = rnd.random()
        if r < 0.60:
            t += rnd.randint(9, 14) * MS
            x = max(0, min(3839, x + rnd.randint(-6, 6)))
            y = max(0, min(1079, y + rnd.randint(-4, 4)))
            out.append((t, Kind.MOVE, x, y, 0, 0, None, None))
        elif r < 0.90:
            t = _keys(out, t, rnd)
        elif r < 0.97:
            button = 1 if rnd.random() < 0.9 else 3
            for _ in range(2 if rnd.random() < 0.15 else 1):
                t += rnd.randint(100, 300) * MS
                out.append((t, Kind.BUTTON_DOWN, x, y, button, 0, None, None))
                if rnd.random() < 0.1:  # a drag
                    x, y = min(3839, x + 40), min(1079, y + 25)
                t += rnd.randint(60, 120) * MS
                out.append((t, Kind.BUTTON_UP, x, y, button, 0, None, None))
        else:
            t += rnd.randint(20, 80) * MS
            out.append((t, Kind.SCROLL, x, y, 0, rnd.choice((-1, 1)), None, None))
    names = EVENT_SCHEMA.names
    rows = [dict(zip(names, row, strict=True)) for row in out[:n]]
    return _with_index(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA))


def ingest_mix(n: int) -> pa.Table:
    """benchmarks/ingest.py's events for one bundle of `n` events."""
    table = pa.ipc.open_stream(pa.py_buffer(synthetic_ipc(n, _ns(START), 1))).read_all()
    return _with_index(table)


def _with_index(table: pa.Table) -> pa.Table:
    return table.append_column("index", pa.array(range(table.num_rows), pa.int64()))


def measure(table: pa.Table, runs: int) -> dict[str, Any]:
    """Median wall and CPU time of `runs` derivations (CPU time is what one core
    spent on it, whatever else the machine was running)."""
    wall, cpu, actions = [], [], 0
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        actions = derive_actions(table).num_rows
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "events": table.num_rows,
        "actions": actions,
        "seconds": round(statistics.median(wall), 4),
        "events_per_s": round(table.num_rows / statistics.median(wall)),
        "cpu_seconds": round(statistics.median(cpu), 4),
        "events_per_cpu_s": round(table.num_rows / statistics.median(cpu)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    result = {
        "person": measure(person(args.events), args.runs),
        "ingest": measure(ingest_mix(args.events), args.runs),
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
