"""Review benchmark: an eight-hour session reconstructed, scanned for PII, redacted.

Prints one JSON object. A deterministic synthetic session shaped like a
working day (≈1.5 M events: mouse moves at up to 120 Hz, ≈60,000 typed
characters with corrections, clicks, scrolls, a focus change every ~30 s,
and some e-mail addresses, phone and card numbers, IBANs and tokens in the
text) is written to a real encrypted store and closed (compacted). Then,
median of `--runs`:

- `decode_s`: decrypting and decoding every event (`Store.read_events`);
- `reconstruct_s` and `detect_s`, and their sum `review_s`: what the review
  screen computes from the decoded events;
- `redact_span_s`: removing the events behind one span of text (a detected
  card number) from the store — re-sealing the chunk that held them,
  committing, and checkpointing — given the reconstruction the review screen
  already has;
- `redact_span_cli_s`: the same as `cleartrace sessions redact --span` does
  it from scratch (decode, reconstruct, select, redact).

Usage: python benchmarks/review.py [--hours H] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.review.pii import PiiCategory, detect
from cleartrace.review.text import reconstruct
from cleartrace.store.keys import load_keys
from cleartrace.store.sessions import Store

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    events, typed = synthetic_day(args.hours)
    with tempfile.TemporaryDirectory(prefix="ct-bench-review-") as tmp:
        paths = Paths(home=Path(tmp), runtime=Path(tmp) / "run")
        ensure_private_dirs(paths)
        store = Store.open(paths, load_keys(paths, create=True))
        handle = store.begin_session(time.time_ns(), 0)
        for start in range(0, len(events), 20_000):  # as flushes would, fewer of them
            store.append_chunk(handle, events[start : start + 20_000])
        store.end_session(handle, time.time_ns())

        decode_s, decoded = _median(lambda: store.read_events(handle.id), args.runs)
        reconstruct_s, streams = _median(lambda: reconstruct(decoded), args.runs)
        detect_s, findings = _median(
            lambda: [detect(s.text, app=s.app, title=s.title) for s in streams], args.runs
        )
        chars = sum(len(s.text) for s in streams)

        def card_spans() -> list[set[int]]:
            spans = []
            for stream, found in zip(streams, findings, strict=True):
                for f in found:
                    if f.category is PiiCategory.PAYMENT_CARD:
                        spans.append(stream.footprint(f.start, f.end))
            return spans

        targets = card_spans()
        redact_times = []
        for positions in targets[: args.runs]:
            started = time.perf_counter()
            store.redact(handle.id, positions, method="span")
            redact_times.append(time.perf_counter() - started)

        def from_scratch() -> None:
            fresh = store.read_events(handle.id)
            for stream in reconstruct(fresh):
                for f in detect(stream.text, categories=[PiiCategory.PAYMENT_CARD]):
                    store.redact(handle.id, stream.footprint(f.start, f.end), method="span")
                    return

        cli_s, _ = _median(from_scratch, args.runs)
        store.close()
    result = {
        "benchmark": "review",
        "hours": args.hours,
        "events": len(events),
        "typed_characters": typed,
        "reconstructed_characters": chars,
        "streams": len(streams),
        "findings": sum(len(f) for f in findings),
        "decode_s": round(decode_s, 3),
        "reconstruct_s": round(reconstruct_s, 3),
        "detect_s": round(detect_s, 3),
        "review_s": round(reconstruct_s + detect_s, 3),
        "redact_span_s": round(statistics.median(redact_times), 3) if redact_times else None,
        "redact_span_cli_s": round(cli_s, 3),
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
