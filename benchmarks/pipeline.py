"""Capture pipeline benchmark: hook callback → queue → writer → sealed chunks in SQLite.

Prints one JSON object. Three runs:

1. throughput — a deterministic synthetic stream (≈60 % moves, 30 % key
   press/release, 7 % clicks, 3 % scrolls, a focus change every ~500 events)
   is fed through the capture callback from a producer thread while the real
   writer thread drains it every 200 ms into a real encrypted store. Focus
   changes go to a real focus timeline, whose watermark a stand-in watcher
   confirms (at the newest event's time) whenever the writer asks, so every
   event is held and decided by its time as in a recording.
2. human rate — 100 events/s for 60 s of event time, one flush every 200 ms
   (an injected clock stands in for waiting), then the session is closed.
3. idle — a real `cleartrace record` on Xvfb with every category consented and
   no input, its CPU time measured from /proc over 30 s.

Usage: python benchmarks/pipeline.py [--events N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cleartrace.capture.base import Sink, StampedEvent
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.timeline import FocusState, FocusTimeline
from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.keys import load_keys
from cleartrace.store.sessions import Store

MS = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-calc"]


def synthetic_stream(n: int, seed: int = 7) -> list[RawEvent]:
    """A reproducible stream shaped like a person's input."""
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
            t += rnd.randint(9, 14) * MS  # under the 120 Hz cap: every move is kept
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


class _Watcher:
    """Stands in for the X11 focus watcher: the server clock is the newest event's
    time (synthetic streams run faster than the wall clock), and every request
    for a watermark is answered at once, as a round trip would be."""

    def __init__(self) -> None:
        self.timeline = FocusTimeline(lambda window: FocusState(False, window))
        self.now_ms = 0
        self.timeline.attach(self.confirm)

    def confirm(self, *, final: bool = False) -> None:
        timeline = self.timeline
        timeline.confirm(self.now_ms, timeline.probe_token(), self.now_ms * MS, final=final)

    def play(self, ev: RawEvent) -> StampedEvent | None:
        """Advance the clock to `ev`; a focus change goes to the timeline, input is returned."""
        self.now_ms = ev[0] // MS
        if ev[1] == Kind.FOCUS:
            self.timeline.timed(self.now_ms, ev[6])
            return None
        return (*ev[:7], self.now_ms)  # type: ignore[return-value]


def _open_store(home: Path) -> tuple[Store, Paths]:
    """A new store, closed once so that its schema is checkpointed out of the WAL."""
    paths = Paths(home=home, runtime=home / "run")
    ensure_private_dirs(paths)
    keys = load_keys(paths, create=True)
    Store.open(paths, keys).close()
    return Store.open(paths, keys), paths


def _disk_bytes(paths: Paths) -> int:
    """The database and its WAL; the -shm index holds no data and goes with the connection."""
    return sum(
        p.stat().st_size for p in (paths.db, paths.db.with_name("store.db-wal")) if p.exists()
    )


def throughput(n: int) -> dict[str, Any]:
    stream = synthetic_stream(n)
    with tempfile.TemporaryDirectory() as tmp:
        store, paths = _open_store(Path(tmp) / "home")
        base = _disk_bytes(paths)
        session = store.begin_session(time.time_ns(), 0)
        sink = Sink()
        written = 0

        def write(batch: list[RawEvent]) -> None:
            nonlocal written
            store.append_chunk(session, batch)
            written += sum(ev[1] != Kind.FOCUS for ev in batch)

        watcher = _Watcher()
        watcher.timeline.untimed(stream[0][6])
        watcher.confirm()
        # The writer's clock is the stream's: events are never held 5 s of it.
        clock = lambda: watcher.now_ms * MS  # noqa: E731
        writer = Writer(sink.queue, write, clock, watcher.timeline, flush_interval=0.2)
        put, play = sink.queue.put, watcher.play

        def produce() -> None:
            # What a hook callback does for each event: one tuple onto the queue.
            for ev in stream:
                stamped = play(ev)
                if stamped is not None:
                    put(stamped)
            watcher.confirm(final=True)  # the hooks stopped

        cpu0, t0 = time.process_time(), time.perf_counter()
        writer.start()
        producer = threading.Thread(target=produce)
        producer.start()
        producer.join()
        writer.stop()
        writer.join()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        open_bytes = _disk_bytes(paths) - base
        store.end_session(session, time.time_ns())
        closed_bytes = _disk_bytes(paths) - base
        store.close()
    # Every input event is decided and kept (no window is excluded).
    inputs = sum(ev[1] != Kind.FOCUS for ev in stream)
    assert written == inputs, (written, inputs)
    return {
        "events": n,
        "events_per_s": round(n / wall),
        "cpu_us_per_event": round(cpu / n * 1e6, 3),
        "bytes_per_event_open": round(open_bytes / n, 3),
        "bytes_per_event": round(closed_bytes / n, 3),
    }


def callback_latency(n: int = 200_000) -> dict[str, Any]:
    """Time each dispatch of a key event as the X11 backend builds it: pynput's
    handler wrapped to stamp the server time, calling the key callback."""
    from cleartrace.capture._x11 import _stamping

    sink = Sink()
    put, mono, perf = sink.queue.put, time.monotonic_ns, time.perf_counter_ns
    kind, on, stamp = int(Kind.KEY_DOWN), [True], [None]

    def on_press(code: int) -> None:
        if on[0] and (x := stamp[0]) is not None:
            put((mono(), kind, code, 0, 0, 0, None, x))

    def handle(display: Any, event: Any, injected: bool) -> None:
        on_press(event.detail)  # pynput decodes the key, then calls back

    dispatch = _stamping(handle, stamp)
    events = [SimpleNamespace(time=12345 + i, detail=i & 0x7F) for i in range(128)]
    samples, empty = [], []
    for i in range(n):
        event = events[i & 0x7F]
        a = perf()
        dispatch(None, event, False)
        b = perf()
        samples.append(b - a)
        c = perf()
        empty.append(perf() - c)
    overhead = statistics.median(empty)
    samples.sort()
    return {
        "callback_p50_ns": round(samples[len(samples) // 2] - overhead),
        "callback_p99_ns": round(samples[int(len(samples) * 0.99)] - overhead),
        "timer_overhead_ns": round(overhead),
    }


def human_rate(rate: int = 100, seconds: int = 60) -> dict[str, Any]:
    stream = synthetic_stream(rate * seconds, seed=11)
    per_flush = rate // 5
    with tempfile.TemporaryDirectory() as tmp:
        store, paths = _open_store(Path(tmp) / "home")
        base = _disk_bytes(paths)
        session = store.begin_session(time.time_ns(), 0)
        clock = [0]
        sink = Sink()
        watcher = _Watcher()
        watcher.timeline.untimed(stream[0][6])
        watcher.confirm()
        writer = Writer(
            sink.queue, lambda b: store.append_chunk(session, b), lambda: clock[0], watcher.timeline
        )
        for start in range(0, len(stream), per_flush):
            for ev in stream[start : start + per_flush]:
                stamped = watcher.play(ev)
                if stamped is not None:
                    sink.queue.put(stamped)
            clock[0] = stream[start + per_flush - 1][0] + 200 * MS
            watcher.now_ms = clock[0] // MS
            writer.flush_now(final=False)
        watcher.confirm(final=True)
        writer.flush_now()
        open_bytes = _disk_bytes(paths) - base
        store.end_session(session, time.time_ns())
        closed = _disk_bytes(paths) - base
        (info,) = store.list_sessions()
        store.close()
    return {
        "events": len(stream),
        "flushes": len(stream) // per_flush,
        "bytes_per_event_open": round(open_bytes / len(stream), 3),
        "bytes_per_event": round(closed / len(stream), 3),
        "stored_events": sum(info.counts.values()),
    }


def idle_cpu(seconds: float) -> dict[str, Any]:
    """CPU share of a real recorder on Xvfb with nothing happening."""
    with tempfile.TemporaryDirectory() as tmp:
        r, w = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(w,),
            stderr=subprocess.DEVNULL,
        )
        number = b""
        while not number.endswith(b"\n"):
            number += os.read(r, 16)
        env = {
            **os.environ,
            "DISPLAY": f":{number.decode().strip()}",
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
            xvfb.terminate()
            xvfb.wait()
            os.close(r)
            os.close(w)
    return {"idle_seconds": seconds, "idle_cpu_percent": round((c1 - c0) / (t1 - t0) * 100, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs; medians reported")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "pipeline"}
    runs = [throughput(args.events) for _ in range(args.repeat)]
    result["throughput"] = {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {
        "runs": args.repeat
    }
    result["callback"] = callback_latency()
    result["human_rate"] = human_rate()
    result["idle"] = idle_cpu(args.idle_seconds)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
