"""Capture pipeline benchmark, on the path a recording really takes.

Events enter through the X11 backend's own callback closures
(`capture._x11.key_callbacks`, `mouse_callbacks`), each called inside the
backend's own `_stamping` wrapper of a dispatch; a stand-in plays pynput's
part (it decodes a ready-made X event and calls the callback, with pynput's
own key and button objects). From there everything is the recorder's: a real
`Recorder` on a real home (consent given, encrypted store), its writer
thread, the focus timeline (a stand-in focus watcher confirms each watermark
at once, at the newest event's server time), `end_session` with its
compaction and checkpoint. Events are stamped by the callbacks' own clock
call: a clock that hands out `monotonic_ns`-like stamps (a person-shaped
millisecond stream, delivered 0-999 µs late, with nanoseconds).

Prints one JSON object:

- `throughput` (median of `--repeat` runs of `--events`): a deterministic
  stream (≈60 % moves at ≤ 100 Hz, 30 % key presses and releases, 7 %
  clicks, 3 % scrolls, a focus change every ~500 events) dispatched as fast
  as one thread can; the clock runs from the first dispatch until the
  recorder has closed and checkpointed the session. Events/s, CPU µs per
  event (every thread), bytes per event on disk after close.
- `callbacks`: `--repeat` more such runs with each dispatch timed, the
  session ended half-way: medians of p50, p99 and the longest per event
  kind, and of how many took over 5 ms (each run's count in `over_5ms_runs`).
- `human_rate`: 100 events/s in real time for `--human-seconds`, stamped by
  the real clock, the writer flushing every 200 ms: the writer thread's CPU
  per chunk, and bytes per event while the session is open and after close.
- `idle`: a real `cleartrace record` on Xvfb with nothing happening, its CPU
  share over `--idle-seconds`.

Every run decrypts what was stored and checks it is the input, in order, to
the microsecond: nothing lost, doubled or reordered.

Usage: python benchmarks/pipeline.py [--events N] [--repeat R]
       [--human-seconds S] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from cleartrace.actions.consent import give
from cleartrace.capture.base import Sink
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.timeline import FocusState, FocusTimeline
from cleartrace.categories import USUAL
from cleartrace.events import Kind
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.recorder import Recorder
from support.measure import cpu_s, disk_bytes
from support.replay import FOCUS, MS, Replay, Stream, play, play_timed, synthetic_stream, window

STALL_NS = 5 * MS
PARTS = ("throughput", "callbacks", "human", "idle")


@contextmanager
def recording(backend: Replay) -> Iterator[tuple[Home, Recorder, threading.Thread]]:
    """A home with consent to everything usual and a recorder running on
    `backend`; the caller stops it (`Recorder.stop`, then joins the thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLEARTRACE_KEYSTORE"] = "file"
        paths = Paths(home=Path(tmp) / "home", runtime=Path(tmp) / "run")
        home = Home.open(paths, create=True)
        give(home, USUAL)
        recorder = Recorder(home, backend)
        runner = threading.Thread(target=recorder.run)
        runner.start()
        deadline = time.monotonic() + 10
        while "keyboard" not in backend.hooks() or "mouse.move" not in backend.hooks():
            if time.monotonic() > deadline:
                raise RuntimeError("the recorder did not install its hooks")
            time.sleep(0.01)
        try:
            yield home, recorder, runner
        finally:
            recorder.stop()
            runner.join()
            home.close()


def check_stored(home: Home, s: Stream) -> dict[str, Any]:
    """What the store holds against the stream's input (to the microsecond):
    how many were lost or came out of nowhere, and whether the order held."""
    sessions = sorted(home.store.list_sessions(), key=lambda info: info.started_ns)
    got = [
        (e.t_ns, int(e.kind), e.a, e.b, e.c, e.d)
        for info in sessions
        for e in home.store.read_events(info.id)
        if e.kind != Kind.FOCUS
    ]
    want = [
        (t // 1000 * 1000, k, a, *((0, 0, 0) if k in (Kind.KEY_DOWN, Kind.KEY_UP) else (b, c, d)))
        for t, k, a, b, c, d in zip(s.t, s.kind, s.a, s.b, s.c, s.d, strict=True)
        if k != FOCUS
    ]
    lost, unexpected = Counter(want) - Counter(got), Counter(got) - Counter(want)
    return {
        "lost": lost.total(),
        "unexpected": unexpected.total(),
        "in_order": got == want,
    }


def flood(n: int, *, timed: bool = False, seed: int = 7) -> dict[str, Any]:
    """One run of `n` events, dispatched as fast as one thread can.

    `timed`: each dispatch is timed, and half-way the session is ended (as
    after a spell without input): the second half is dispatched while it is
    closed and compacted.
    """
    t0_ns, x0_ms = time.monotonic_ns() + 10**9, 1000
    s = synthetic_stream(n, seed, t0_ns=t0_ns, x0_ms=x0_ms)
    # The callbacks' clock: each call, the next input's delivery.
    stamps = iter(array("q", (t for t, k in zip(s.t, s.kind, strict=True) if k != FOCUS)))
    backend = Replay(stamps.__next__, lambda ms: t0_ns + (ms - x0_ms) * MS, window(0, 0))
    lat = None
    with recording(backend) as (home, recorder, runner):
        base = disk_bytes(home.paths, checkpoint=True)
        cpu0, t0 = cpu_s(), time.perf_counter()
        if timed:
            lat = array("q", bytes(8 * n))
            play_timed(backend, s, lat, 0, n // 2)
            ender = threading.Thread(target=recorder.end_session)
            ender.start()
            while recorder.status().session is not None:  # returns once it is detached
                time.sleep(0.001)
            play_timed(backend, s, lat, n // 2, n)  # while it is compacted
            ender.join()
        else:
            play(backend, s)
        # The clock runs until the session is closed, compacted and checkpointed.
        recorder.stop()
        runner.join()
        wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
        closed = disk_bytes(home.paths) - base
        checked = check_stored(home, s)
    result: dict[str, Any] = {
        "events": n,
        "events_per_s": round(n / wall),
        "cpu_us_per_event": round(cpu / n * 1e6, 3),
        "bytes_per_event": round(closed / n, 3),
    } | checked
    if lat is not None:
        result["callbacks"] = latencies(s, lat)
    return result


def latencies(s: Stream, lat: array[int]) -> dict[str, Any]:
    """p50, p99 and the longest dispatch per event kind (µs), and the stalls."""
    import numpy as np

    took, kinds = np.frombuffer(lat, dtype=np.int64), np.frombuffer(s.kind, dtype=np.int8)
    out: dict[str, Any] = {}
    for kind in sorted(set(s.kind) - {FOCUS}):
        mine = took[kinds == kind]
        out[Kind(kind).name.lower()] = {
            "p50_us": round(float(np.percentile(mine, 50)) / 1000, 2),
            "p99_us": round(float(np.percentile(mine, 99)) / 1000, 2),
            "max_us": round(float(mine.max()) / 1000, 1),
        }
    inputs = took[kinds != FOCUS]
    out["over_5ms"] = int((inputs > STALL_NS).sum())
    out["max_ms"] = round(float(inputs.max()) / MS, 2)
    return out


def human_rate(seconds: float, rate: int = 100) -> dict[str, Any]:
    """`rate` events a second in real time, stamped by the real clock."""
    n = int(seconds * rate)
    s = synthetic_stream(n, seed=11)
    mono = time.monotonic_ns
    backend = Replay(mono, lambda ms: ms * MS, window(0, 0))
    with recording(backend) as (home, recorder, runner):
        base = disk_bytes(home.paths, checkpoint=True)
        (writer,) = [t for t in threading.enumerate() if t.name == "cleartrace-writer"]
        assert writer.ident is not None
        clock = time.pthread_getcpuclockid(writer.ident)
        cpu0 = time.clock_gettime_ns(clock)
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # Stamped now: server time and delivery from the real clock.
            s.x[i] = mono() // MS
            play(backend, s, i, i + 1)
        time.sleep(0.5)  # the last flush
        cpu = time.clock_gettime_ns(clock) - cpu0
        open_bytes = disk_bytes(home.paths) - base
        chunks = home.store.chunk_count(recorder.status().session or "")
        recorder.stop()
        runner.join()
        closed = disk_bytes(home.paths) - base
        stored = sum(sum(info.counts.values()) for info in home.store.list_sessions())
    return {
        "events": n,
        "seconds": seconds,
        "chunks": chunks,
        "writer_cpu_us_per_chunk": round(cpu / 1000 / chunks, 1),
        "bytes_per_event_open": round(open_bytes / n, 3),
        "bytes_per_event": round(closed / n, 3),
        "stored_events": stored,
    }


def chunk_cpu(chunks: int = 300, per_chunk: int = 20) -> dict[str, Any]:
    """CPU of one 200 ms chunk at a human rate, the caches warm: the real
    callbacks, writer and store, flushed back to back on this thread, each
    flush 200 ms of event time later (the median flush's thread CPU)."""
    n = chunks * per_chunk
    t0_ns, x0_ms = time.monotonic_ns() + 10**9, 1000
    s = synthetic_stream(n + 1, seed=13, t0_ns=t0_ns, x0_ms=x0_ms)
    stamps = iter(array("q", (t for t, k in zip(s.t, s.kind, strict=True) if k != FOCUS)))
    mono_of = lambda ms: t0_ns + (ms - x0_ms) * MS  # noqa: E731
    backend = Replay(stamps.__next__, mono_of, window(0, 0))
    took: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLEARTRACE_KEYSTORE"] = "file"
        home = Home.open(Paths(home=Path(tmp) / "home", runtime=Path(tmp) / "run"), create=True)
        try:
            store, sink = home.store, Sink()
            session = store.begin_session(time.time_ns(), time.monotonic_ns())
            timeline = FocusTimeline(lambda w: FocusState(False, w and (w.app, w.title)))
            backend.start_keyboard(sink)
            backend.start_mouse(sink, moves=True, clicks=True, scrolls=True)
            backend.start_focus(timeline, titles=True)
            now = [0]
            clock = lambda: now[0]  # noqa: E731
            writer = Writer(sink.queue, lambda b: store.append_chunk(session, b), clock, timeline)
            for start in range(1, n + 1, per_chunk):
                play(backend, s, start, start + per_chunk)
                now[0] = mono_of(backend.event.time + 200)
                t = time.thread_time_ns()
                writer.flush_now(final=False)
                took.append(time.thread_time_ns() - t)
                backend.settle()  # what the watcher does in the 200 ms until the next
            backend.close()
        finally:
            home.close()
    took.sort()
    return {"chunks": chunks, "events_per_chunk": per_chunk, "cpu_us": took[len(took) // 2] / 1000}


def minimal_chunk_cpu(gap_s: float, chunks: int = 60) -> float:
    """The floor: one chunk of 20 events as JSON, zstd, AES-GCM and one SQLite
    commit, nothing else (µs of thread CPU, median), `gap_s` apart."""
    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    events = [(time.monotonic_ns(), 3, 100 + i, 200, 0, 0, None) for i in range(20)]
    aead, pack = AESGCM(os.urandom(32)), zstandard.ZstdCompressor(level=3).compress
    took = []
    with tempfile.TemporaryDirectory() as tmp, closing(sqlite3.connect(f"{tmp}/db")) as conn:
        conn.isolation_level = None
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE chunks (idx INTEGER PRIMARY KEY, blob BLOB)")
        for i in range(chunks):
            time.sleep(gap_s)
            t = time.thread_time_ns()
            blob = aead.encrypt(os.urandom(12), pack(json.dumps(events).encode()), b"chunk")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO chunks VALUES (?, ?)", (i, blob))
            conn.execute("COMMIT")
            took.append(time.thread_time_ns() - t)
    took.sort()
    return took[len(took) // 2] / 1000


@contextmanager
def xvfb() -> Iterator[str]:
    """A private X server; its DISPLAY."""
    r, w = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stderr=subprocess.DEVNULL,
    )
    try:
        number = b""
        while not number.endswith(b"\n"):
            number += os.read(r, 16)
        yield f":{number.decode().strip()}"
    finally:
        server.terminate()
        server.wait()
        os.close(r)
        os.close(w)


def idle_cpu(display: str, seconds: float) -> dict[str, Any]:
    """CPU share of a real recorder on Xvfb with nothing happening."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DISPLAY": display,
            "CLEARTRACE_HOME": f"{tmp}/home",
            "XDG_RUNTIME_DIR": tmp,
            "CLEARTRACE_KEYSTORE": "file",
        }
        env.pop("WAYLAND_DISPLAY", None)
        cli = [sys.executable, "-m", "cleartrace"]
        subprocess.run([*cli, "consent", "give", "--all"], env=env, check=True, capture_output=True)
        rec = subprocess.Popen([*cli, "record"], env=env, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)  # start-up is not idle time
            ticks = os.sysconf("SC_CLK_TCK")

            def cpu() -> float:
                fields = Path(f"/proc/{rec.pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / ticks

            c0, t0 = cpu(), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu(), time.monotonic()
        finally:
            rec.terminate()
            rec.wait(timeout=30)
    return {"idle_seconds": seconds, "idle_cpu_percent": round((c1 - c0) / (t1 - t0) * 100, 3)}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over `runs`; what was lost or reordered, over all."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": len(runs)}
    for key in ("lost", "unexpected"):
        if key in out:
            out[key] = sum(r[key] for r in runs)
    if "in_order" in out:
        out["in_order"] = all(r["in_order"] for r in runs)
    return out


def _median_callbacks(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each kind's figures and the stalls, as medians over the timed `runs`."""
    per_run = [r["callbacks"] for r in runs]
    out: dict[str, Any] = {
        kind: _median([run[kind] for run in per_run]) | {"runs": len(runs)}
        for kind, figures in per_run[0].items()
        if isinstance(figures, dict)
    }
    out["over_5ms"] = statistics.median(run["over_5ms"] for run in per_run)
    out["over_5ms_runs"] = [run["over_5ms"] for run in per_run]
    out["max_ms"] = statistics.median(run["max_ms"] for run in per_run)
    checked = _median([{k: r[k] for k in ("lost", "unexpected", "in_order")} for r in runs])
    return out | {k: checked[k] for k in ("lost", "unexpected", "in_order")} | {"runs": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument("--human-seconds", type=float, default=20.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {','.join(PARTS)}",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    result: dict[str, Any] = {"benchmark": "pipeline"}
    with xvfb() as display:
        os.environ["DISPLAY"] = display  # pynput's key objects need a display to import
        if "throughput" in parts:
            result["throughput"] = _median([flood(args.events) for _ in range(args.repeat)])
        if "callbacks" in parts:
            timed = [flood(args.events, timed=True) for _ in range(args.repeat)]
            result["callbacks"] = _median_callbacks(timed)
        if "human" in parts:
            runs = [human_rate(args.human_seconds) for _ in range(args.repeat)]
            result["human_rate"] = _median(runs) | {
                "minimal_pipeline_us_per_chunk": minimal_chunk_cpu(0.2)
            }
            result["chunk_cpu_warm"] = _median([chunk_cpu() for _ in range(args.repeat)]) | {
                "minimal_pipeline_us": minimal_chunk_cpu(0.0)
            }
        if "idle" in parts:
            result["idle"] = idle_cpu(display, args.idle_seconds)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    runs = [result[k] for k in ("throughput", "callbacks") if k in result]
    if any(r["lost"] or r["unexpected"] or not r["in_order"] for r in runs):
        sys.exit("events were lost, made up or reordered: see the figures above")


if __name__ == "__main__":
    main()
