"""Review benchmark: opening a session in the review window at 1, 8 and 40 hours,
and an eight-hour session reconstructed, scanned for PII, redacted.

Prints one JSON object. A deterministic synthetic session shaped like a
working day (≈190,000 events an hour: mouse moves at up to 120 Hz, ≈7,500
typed characters with corrections, clicks, scrolls, a focus change every
~30 s, and some e-mail addresses, phone and card numbers, IBANs and tokens
in the text; longer sessions repeat its first hour, shifted in time) is
written to a real encrypted store in a real home and closed (compacted).
The store of each size is built once (by the compared package, if any:
newer code reads the batches older code wrote) and kept in the temporary
directory (`ct-bench-review-cache`), so later runs start at once.

`open`, per size in `--hours`: `open_s`, the median of `--runs` of what the
review window does to open the session (`actions.sessions.review`, which
the window's worker thread calls), and `peak_rss_mb`, the largest of the
runs' peak resident memory of the process over its own before the open
(`ru_maxrss`; on Linux the address space's `VmHWM`, which a forked process
does not inherit). Every run is a fresh process, so each size's peak is its
own. With `--compare SRC`, the same is measured in the same run with the
package in `SRC` (another version's `src`, such as the main branch's from
`git archive main src | tar -x -C /tmp/before`), under `before`.

`stages`, of the `--stages-hours` session (8 by default), median of `--runs`:

- `decode_s`: decrypting and decoding every event (`Store.read_events`);
- `reconstruct_s` and `detect_s`, and their sum `review_s`: what the review
  screen computes from the decoded events;
- `redact_span_s`: removing the events behind one span of text (a detected
  card number) from the store — re-sealing the chunk that held them,
  committing, and checkpointing — given the reconstruction the review screen
  already has;
- `redact_span_cli_s`: the same as `cleartrace sessions redact --span` does
  it from scratch (decode, reconstruct, select, redact).

Usage: python benchmarks/review.py [--hours 1,8,40] [--runs N] [--compare SRC]
       [--stages-hours H]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartrace.actions import sessions
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review.pii import PiiCategory, detect
from cleartrace.review.text import reconstruct
from cleartrace.store.codec import CODEC_VERSION

MS = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-writer", "thunderbird"]
_VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his "
    "from at which but have an they you were her she there been one all we their has "
    "would when report meeting budget schedule invoice customer project review "
    "update draft release"
)
WORDS = _VOCABULARY.split()
PII = [
    "anna.berg@example.org",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "192.168.10.24",
    "ghp_4f9Kq2LmX8vT1bZr7YcW3nP6sD0aJ5hE9uGi",
]
BACKSPACE = 0xFF08


def _type(out: list[RawEvent], t: int, text: str, rnd: random.Random) -> int:
    for ch in text:
        if rnd.random() < 0.03:  # a typo, corrected at once
            wrong = keysym_of_char(rnd.choice("qwertyuiop"))
            for code in (wrong, BACKSPACE):
                t += rnd.randint(60, 200) * MS
                out.append((t, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
                t += rnd.randint(30, 80) * MS
                out.append((t, int(Kind.KEY_UP), code, 0, 0, 0, None))
        code = 0xFF0D if ch == "\n" else keysym_of_char(ch)
        t += rnd.randint(60, 200) * MS
        out.append((t, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
        t += rnd.randint(30, 80) * MS
        out.append((t, int(Kind.KEY_UP), code, 0, 0, 0, None))
    return t


def _sentence(rnd: random.Random) -> str:
    words = [rnd.choice(WORDS) for _ in range(rnd.randint(5, 14))]
    if rnd.random() < 0.08:
        words.insert(rnd.randrange(len(words)), rnd.choice(PII))
    return " ".join(words).capitalize() + ". "


def synthetic_day(hours: float, seed: int = 11) -> tuple[list[RawEvent], int]:
    """(events, typed characters) of a reproducible working day."""
    rnd = random.Random(seed)
    end = int(hours * 3600 * 1000) * MS
    out: list[RawEvent] = []
    t, x, y, typed, next_focus = 0, 640, 400, 0, 0
    chars_per_hour = 60_000 / 8
    while t < end:
        if t >= next_focus:
            app = rnd.choice(APPS)
            out.append(
                (t, int(Kind.FOCUS), 0, 0, 0, 0, (app, f"{app}: document {rnd.randint(1, 90)}"))
            )
            next_focus = t + rnd.randint(15, 45) * 1000 * MS
        if typed < chars_per_hour * t / (3600 * 1000 * MS) and rnd.random() < 0.5:
            text = _sentence(rnd) + ("\n" if rnd.random() < 0.2 else "")
            t = _type(out, t, text, rnd)
            typed += len(text)
            continue
        for _ in range(rnd.randint(60, 200)):  # a mouse gesture at 120 Hz
            t += 8_333_333
            x = max(0, min(1919, x + rnd.randint(-9, 9)))
            y = max(0, min(1079, y + rnd.randint(-6, 6)))
            out.append((t, int(Kind.MOVE), x, y, 0, 0, None))
        r = rnd.random()
        if r < 0.35:
            t += rnd.randint(80, 400) * MS
            out.append((t, int(Kind.BUTTON_DOWN), x, y, 1, 0, None))
            t += rnd.randint(60, 120) * MS
            out.append((t, int(Kind.BUTTON_UP), x, y, 1, 0, None))
        elif r < 0.55:
            for _ in range(rnd.randint(1, 6)):
                t += rnd.randint(20, 60) * MS
                out.append((t, int(Kind.SCROLL), x, y, 0, rnd.choice((-1, 1)), None))
        t += rnd.randint(50, 600) * MS
    return out, typed


def _median(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


_CACHE_VERSION = 2  # 2: sessions under an hour hold all of theirs
_FLUSH = 20_000  # events per chunk as written (fewer, larger flushes than a recorder's)


def _paths(directory: Path) -> Paths:
    return Paths(home=directory / "home", runtime=directory / "run")


def _open_home(directory: Path, *, create: bool = False) -> Home:
    os.environ["CLEARTRACE_KEYSTORE"] = "file"
    return Home.open(_paths(directory), create=create)


def cached_session(hours: float) -> Path:
    """The directory of a home holding one closed session of `hours`, built
    once (its first hour repeated, shifted in time) and kept for later runs;
    one per batch format, since an older package reads only its own."""
    root = Path(tempfile.gettempdir()) / "ct-bench-review-cache"
    directory = root / f"{hours:g}h-codec{CODEC_VERSION}-v{_CACHE_VERSION}"
    if (directory / "done").exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.chmod(root, 0o700)
    hour, typed = synthetic_day(min(hours, 1.0))
    total = round(len(hour) * max(hours, 1.0))  # under an hour, `hour` is the whole session
    period = hour[-1][0] + 1_000 * MS
    home = _open_home(directory, create=True)
    try:
        store = home.store
        handle = store.begin_session(time.time_ns(), 0)
        n, chars, offset = 0, 0, 0
        while n < total:
            part = [(t + offset, *rest) for t, *rest in hour[: total - n]]
            for start in range(0, len(part), _FLUSH):  # as flushes would, fewer of them
                store.append_chunk(handle, part[start : start + _FLUSH])  # type: ignore[arg-type]
            n, chars, offset = n + len(part), chars + typed, offset + period
        store.end_session(handle, time.time_ns())
        (directory / "meta.json").write_text(
            json.dumps({"session": handle.id, "events": n, "typed_characters": chars})
        )
    finally:
        home.close()
    (directory / "done").touch()
    return directory


def _meta(directory: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((directory / "meta.json").read_text())
    return meta


def _peak_kib() -> int:
    """This process's peak resident memory (KiB): `ru_maxrss`, except that on
    Linux it carries the parent's peak over `fork` and `exec`, so there the
    address space's own high-water mark (`VmHWM`) is read instead."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def measure_open(directory: Path) -> dict[str, Any]:
    """In a fresh process: one open as the review window does it, and the peak
    memory it added to the process."""
    session_id = _meta(directory)["session"]
    home = _open_home(directory)
    try:
        sessions.session(home, session_id)  # settled, as the window's list did already
        before = _peak_kib()
        started = time.perf_counter()
        review = sessions.review(home, session_id)
        elapsed = time.perf_counter() - started
        peak = _peak_kib()
    finally:
        home.close()
    return {
        "open_s": elapsed,
        "peak_rss_mb": (peak - before) / 1024,
        "characters": sum(len(s.text) for s in review.streams),
        "findings": sum(len(f) for f in review.findings),
        "minutes": len(review.activity),
    }


def _child(*args: str, src: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, *env.get("PYTHONPATH", "").split(os.pathsep)])
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def open_figures(directory: Path, runs: int, src: str | None) -> dict[str, Any]:
    measured = [_child("--measure-open", str(directory), src=src) for _ in range(runs)]
    last = measured[-1]
    return {
        "open_s": round(statistics.median(m["open_s"] for m in measured), 3),
        "peak_rss_mb": round(max(m["peak_rss_mb"] for m in measured), 1),
        "characters": last["characters"],
        "findings": last["findings"],
        "minutes": last["minutes"],
    }


def stages(hours: float, cached: Path, runs: int) -> dict[str, Any]:
    """Decode, reconstruct, detect and redact, each on its own (a copy of the
    cached session: redacting changes it)."""
    with tempfile.TemporaryDirectory(prefix="ct-bench-review-") as tmp:
        directory = Path(tmp) / "copy"
        shutil.copytree(cached, directory)
        session_id = _meta(directory)["session"]
        home = _open_home(directory)
        store = home.store
        try:
            decode_s, decoded = _median(lambda: store.read_events(session_id), runs)
            reconstruct_s, streams = _median(lambda: reconstruct(decoded), runs)
            detect_s, findings = _median(
                lambda: [detect(s.text, app=s.app, title=s.title) for s in streams], runs
            )
            chars = sum(len(s.text) for s in streams)
            n_events = len(decoded)
            decoded = []  # let the decoded session go before redacting

            targets = [
                stream.footprint(f.start, f.end)
                for stream, found in zip(streams, findings, strict=True)
                for f in found
                if f.category is PiiCategory.PAYMENT_CARD
            ]
            redact_times = []
            for positions in targets[:runs]:
                started = time.perf_counter()
                store.redact(session_id, positions, method="span")
                redact_times.append(time.perf_counter() - started)

            def from_scratch() -> None:
                fresh = store.read_events(session_id)
                for stream in reconstruct(fresh):
                    for f in detect(stream.text, categories=[PiiCategory.PAYMENT_CARD]):
                        store.redact(session_id, stream.footprint(f.start, f.end), method="span")
                        return

            cli_s, _ = _median(from_scratch, runs)
        finally:
            home.close()
    return {
        "hours": hours,
        "events": n_events,
        "reconstructed_characters": chars,
        "streams": len(streams),
        "findings": sum(len(f) for f in findings),
        "decode_s": round(decode_s, 3),
        "reconstruct_s": round(reconstruct_s, 3),
        "detect_s": round(detect_s, 3),
        "review_s": round(reconstruct_s + detect_s, 3),
        "redact_span_s": round(statistics.median(redact_times), 3) if redact_times else None,
        "redact_span_cli_s": round(cli_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="1,8,40", help="session sizes to open, in hours")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", metavar="SRC", help="also measure the package in SRC")
    parser.add_argument("--stages-hours", type=float, default=8.0, help="0: no stages")
    parser.add_argument("--measure-open", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--build", type=float, metavar="HOURS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_open:
        print(json.dumps(measure_open(Path(args.measure_open))))
        return
    if args.build:
        print(json.dumps({"dir": str(cached_session(args.build))}))
        return

    def cached(hours: float) -> Path:
        # Built by the compared (older) package when there is one: the newer
        # still reads the batches an older one wrote, not the other way round.
        return Path(_child("--build", str(hours), src=args.compare)["dir"])

    sizes = [float(h) for h in args.hours.split(",") if h]
    result: dict[str, Any] = {"benchmark": "review", "runs": args.runs, "open": {}}
    for hours in sizes:
        directory = cached(hours)
        meta = _meta(directory)
        row: dict[str, Any] = {k: meta[k] for k in ("events", "typed_characters")}
        row["after"] = open_figures(directory, args.runs, None)
        if args.compare:
            row["before"] = open_figures(directory, args.runs, args.compare)
        result["open"][f"{hours:g}h"] = row
    if args.stages_hours:
        result["stages"] = stages(args.stages_hours, cached(args.stages_hours), args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
