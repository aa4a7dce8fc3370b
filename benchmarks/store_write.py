"""Store benchmark: the write path, bytes on disk with real timestamps, compaction.

Prints one JSON object. Every stream is shaped like `benchmarks/pipeline.py`'s
synthetic stream (≈60 % moves at ≤120 Hz, 30 % key press/release, 7 % clicks,
3 % scrolls, a focus change every ~500 events), stamped as `monotonic_ns` stamps
a hook's events: the millisecond-shaped time plus a uniform 0-999 µs and a
random number of nanoseconds (never going back). Medians of `--repeat`:

1. bytes — the stream appended to a real encrypted store in 200 ms chunks,
   then closed (`Store.end_session`: compaction and checkpoint): bytes per
   event of the database and its WAL, after close;
2. human_rate — 100 events/s, one 20-event `append_chunk` per 200 ms of event
   time: CPU µs per chunk, the open session's bytes per event;
3. compaction — an 8-hour day of 200 ms chunks (`--chunks`, ~10 events each)
   built once with `append_chunk`, copied, and closed once per copy: wall
   and CPU seconds of `end_session`; every event is then read back and
   counted, in order;
4. decode — the closed day's events decrypted and decoded
   (`open_chunk_raw` and `open_chunk`, i.e. `decode_raw` and `decode_events`).

Usage: python benchmarks/store_write.py [--events N] [--chunks N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.chunks import open_chunk, open_chunk_raw
from cleartrace.store.keys import Keys, load_keys
from cleartrace.store.sessions import SessionHandle, Store
from support.measure import cpu_s, disk_bytes

MS = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-calc"]
CHUNK_NS = 200 * MS


def synthetic_stream(n: int, seed: int = 7) -> list[RawEvent]:
    """The shape of `benchmarks/pipeline.py`'s stream (copied: this script must
    also run against older trees), in whole milliseconds."""
    rnd = random.Random(seed)
    out: list[RawEvent] = []
    t, x, y = 0, 640, 400
    while len(out) < n:
        if len(out) % 500 == 0:
            app = rnd.choice(APPS)
            out.append(
                (t, int(Kind.FOCUS), 0, 0, 0, 0, (app, f"{app} document {rnd.randint(1, 40)}"))
            )
            continue
        r = rnd.random()
        if r < 0.60:
            t += rnd.randint(9, 14) * MS
            x = max(0, min(1919, x + rnd.randint(-6, 6)))
            y = max(0, min(1079, y + rnd.randint(-4, 4)))
            out.append((t, int(Kind.MOVE), x, y, 0, 0, None))
        elif r < 0.90:
            key = rnd.choice(b"etaoinshrdlu etaoin ") if rnd.random() < 0.9 else 0xFF08
            t += rnd.randint(40, 160) * MS
            out.append((t, int(Kind.KEY_DOWN), key, 0, 0, 0, None))
            t += rnd.randint(30, 90) * MS
            out.append((t, int(Kind.KEY_UP), key, 0, 0, 0, None))
        elif r < 0.97:
            t += rnd.randint(100, 600) * MS
            out.append((t, int(Kind.BUTTON_DOWN), x, y, 1, 0, None))
            t += rnd.randint(60, 120) * MS
            out.append((t, int(Kind.BUTTON_UP), x, y, 1, 0, None))
        else:
            t += rnd.randint(20, 80) * MS
            out.append((t, int(Kind.SCROLL), x, y, 0, rnd.choice((-1, 1)), None))
    return out[:n]


def real_stamps(stream: list[RawEvent], seed: int = 3) -> list[RawEvent]:
    """`stream` as a monotonic clock stamps it: + uniform 0-999 µs + random ns,
    never earlier than the event before."""
    rnd = random.Random(seed)
    out: list[RawEvent] = []
    last = 10**12  # a monotonic clock some minutes after boot
    for ev in stream:
        t = max(last, 10**12 + ev[0] + rnd.randrange(1_000_000))
        out.append((t, *ev[1:]))  # type: ignore[arg-type]
        last = t
    return out


def chunked(stream: list[RawEvent], span_ns: int = CHUNK_NS) -> list[list[RawEvent]]:
    """The stream cut where a writer flushing every `span_ns` of event time would cut it."""
    out: list[list[RawEvent]] = []
    end = -1
    for ev in stream:
        if ev[0] >= end:
            out.append([])
            end = ev[0] - ev[0] % span_ns + span_ns
        out[-1].append(ev)
    return out


def _new_home(root: Path) -> tuple[Paths, Keys]:
    paths = Paths(home=root, runtime=root / "run")
    ensure_private_dirs(paths)
    keys = load_keys(paths, create=True)
    Store.open(paths, keys).close()  # the schema checkpointed out of the WAL
    return paths, keys


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def bytes_after_close(n: int) -> dict[str, Any]:
    stream = real_stamps(synthetic_stream(n))
    with tempfile.TemporaryDirectory() as tmp:
        paths, keys = _new_home(Path(tmp))
        store = Store.open(paths, keys)
        base = disk_bytes(paths)
        handle = store.begin_session(time.time_ns(), stream[0][0])
        for batch in chunked(stream):
            store.append_chunk(handle, batch)
        open_bytes = disk_bytes(paths) - base
        store.end_session(handle, time.time_ns())
        closed = disk_bytes(paths) - base
        store.close()
    return {
        "events": n,
        "bytes_per_event_open": round(open_bytes / n, 3),
        "bytes_per_event": round(closed / n, 3),
    }


def human_rate(chunks: int, per_chunk: int = 20) -> dict[str, Any]:
    stream = real_stamps(synthetic_stream(chunks * per_chunk, seed=11))
    batches = [stream[i : i + per_chunk] for i in range(0, len(stream), per_chunk)]
    with tempfile.TemporaryDirectory() as tmp:
        paths, keys = _new_home(Path(tmp))
        store = Store.open(paths, keys)
        base = disk_bytes(paths)
        handle = store.begin_session(time.time_ns(), stream[0][0])
        append = store.append_chunk
        cpu0 = time.process_time()
        for batch in batches:
            append(handle, batch)
        cpu = time.process_time() - cpu0
        open_bytes = disk_bytes(paths) - base
        store.close()
    return {
        "chunks": len(batches),
        "cpu_us_per_chunk": round(cpu / len(batches) * 1e6, 1),
        "bytes_per_event_open": round(open_bytes / len(stream), 3),
    }


def _build_day(root: Path, chunks: int) -> tuple[Paths, Keys, SessionHandle, int]:
    """A recording session of `chunks` 200 ms chunks, left open (as before close)."""
    per_chunk_events = 10
    stream = real_stamps(synthetic_stream(chunks * per_chunk_events, seed=5))
    # 8 h of 200 ms chunks: ~10 events each, cut by count so that there are exactly `chunks`.
    paths, keys = _new_home(root)
    store = Store.open(paths, keys)
    handle = store.begin_session(time.time_ns(), stream[0][0])
    for i in range(0, len(stream), per_chunk_events):
        store.append_chunk(handle, stream[i : i + per_chunk_events])
    store._checkpoint()
    store.close()
    return paths, keys, handle, len(stream)


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    cpu0, t0 = cpu_s(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_s() - cpu0


def compaction_and_decode(chunks: int, repeat: int) -> dict[str, Any]:
    result: dict[str, Any] = {"chunks": chunks}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths, keys, handle, n = _build_day(Path(tmp) / "day", chunks)
        result["events"] = n
        result["build_s"] = round(time.perf_counter() - t0, 1)
        runs = []
        closed_paths = paths
        for r in range(repeat):
            copy = Path(tmp) / f"copy{r}"
            shutil.copytree(paths.home, copy)
            closed_paths = Paths(home=copy, runtime=copy / "run")
            store = Store.open(closed_paths, keys)  # a live writer (this pid): not recovered
            wall, cpu = _timed(lambda s=store: s.end_session(handle, time.time_ns()))
            runs.append({"end_session_s": round(wall, 3), "end_session_cpu_s": round(cpu, 3)})
            store.close()
        result |= _median(runs)
        store = Store.open(closed_paths, keys)
        try:
            rows = store._conn.execute(
                "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx", (handle.id,)
            ).fetchall()
            result["compacted_chunks"] = len(rows)
            key = store._session_key(handle.id)
            decoded: list[dict[str, Any]] = []
            for _ in range(repeat):
                got: list[int] = []

                def raw(got: list[int] = got) -> None:
                    for idx, blob in rows:
                        got.append(len(open_chunk_raw(key, handle.id, idx, blob)))

                def typed() -> None:
                    for idx, blob in rows:
                        open_chunk(key, handle.id, idx, blob)

                wall_raw, _ = _timed(raw)
                wall_typed, _ = _timed(typed)
                assert sum(got) == n, (sum(got), n)
                decoded.append(
                    {"decode_raw_s": round(wall_raw, 3), "decode_events_s": round(wall_typed, 3)}
                )
            result |= _median(decoded)
        finally:
            store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--chunks", type=int, default=144_000, help="the day's 200 ms chunks")
    parser.add_argument("--human-chunks", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=("bytes", "human_rate", "compaction"), action="append", default=None
    )
    args = parser.parse_args()
    only = set(args.only or ("bytes", "human_rate", "compaction"))
    result: dict[str, Any] = {"benchmark": "store_write", "repeat": args.repeat}
    if "bytes" in only:
        result["bytes"] = _median([bytes_after_close(args.events) for _ in range(args.repeat)])
    if "human_rate" in only:
        result["human_rate"] = _median([human_rate(args.human_chunks) for _ in range(args.repeat)])
    if "compaction" in only:
        result["compaction"] = compaction_and_decode(args.chunks, args.repeat)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
