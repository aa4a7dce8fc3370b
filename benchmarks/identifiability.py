"""Identifiability benchmark: can typing rhythm name the typist, before and after re-timing?

Typing rhythm identifies people: dwell (how long a key is held) and flight
(key-down to the next key-down) times, per key and per letter pair, are a
biometric. This benchmark makes synthetic typists, has each type the same
texts, and lets an attacker who has other samples of the same people name
the typist of held-out samples of 200 keystrokes (characters typed; the
Shift presses for capitals come on top). It prints one JSON object:

- `accuracy`: per variant of the events, the top-1 accuracy of a k-NN
  (k = 1) and a logistic-regression attacker on standardised dwell and
  flight features, and the better of the two (`best`). Every sample is held
  out once, by k-fold over the texts: the attacker is trained on the same
  people typing other texts;
- `chance` (1 / typists) and `twice_chance`; `raw_identifies` says the
  attack works on raw events (best >= 0.8), `<variant>_within_twice_chance`
  that a variant hides the typist (best <= twice chance);
- `by_features`: per variant, the best accuracy of each group of features
  alone (holds, flights, overall statistics, the starts of typing runs):
  what that variant leaks;
- `typing`: what the raw samples look like (mean flight and hold, typing
  runs, Shift presses and rollover per sample), to hold against the
  figures below.

Variants of the same events, and what each leaves to the attacker:

- `raw`, as captured: everything.
- `retimed`, as a bundle carries them without `typing_rhythm` consent
  (`upload.retiming.retime`): every key but the modifiers released right
  after its press, then each typing run's key events at a fixed 10 ms pace.
  Only where each run starts is left.
- `spread`, each typing run's key events spread evenly between the run's
  first and last event: the order as above, and the run's average speed.
- `ordered`, each typing run's key events at a fixed 10 ms pace in the order
  they came: how many keys were pressed while a key was held (a long hold, a
  rollover) still says, per key and per pair, how that person types. This
  is what `retime` would leave without pairing releases with their presses.

The typists. Everything is log-normal, with person-level means and spreads
drawn from published keystroke-dynamics statistics:

- Flight: per-person mean drawn log-normal with mean 239 ms and standard
  deviation 111 ms across people: the mean inter-key interval and its
  spread over 168,000 people in Dhakal, Feit, Kristensson & Oulasvirta,
  "Observations on Typing from 136 Million Keystrokes", CHI 2018 (52 words a
  minute on average). Killourhy & Maxion, "Comparing Anomaly-Detection
  Algorithms for Keystroke Dynamics", DSN 2009 (the CMU benchmark, 51
  subjects) put keydown-keydown latencies at about 100-400 ms: the drawn
  means are kept in 100-600 ms.
- Hold (dwell): per-person mean drawn log-normal with mean 116 ms (Dhakal et
  al.'s mean keypress duration) and 20 ms across people, kept in 70-180 ms:
  Killourhy & Maxion's per-subject hold times lie at about 80-120 ms, which
  we read as the middle of the population, about ±1 standard deviation.
- Within a person (assumed, chosen on the noisy side so the attack is not
  flattered): a log-scale spread per keystroke drawn for each person in
  0.25-0.45 for flights and 0.15-0.30 for holds.
- Rhythm, not only speed: every letter pair has a population offset
  (log-normal, sigma 0.2; pairs typed by alternating hands an assumed 15 %
  faster, after Dhakal et al.'s finding that pairs typed by different hands
  predict speed) and a person's own offset (sigma 0.25); every key's hold
  has a person's own offset (sigma 0.15). These spreads are assumed.
- Shift is pressed before a capital and released a person-typical while
  after the letter's press (log-normal, median drawn in 60-200 ms), but
  before the next press (or that letter would be a capital too).
- Pauses: before a word, with probability 0.07, a pause of at least
  `events.TYPING_PAUSE_NS` (2 s plus a log-normal median 1.5 s), so a sample
  holds several typing runs; other flights are capped at 1.5 s.

Usage: python benchmarks/identifiability.py [--seed S] [--typists N] [--samples M]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cleartrace.events import TYPING_PAUSE_NS, Kind, keysym_of_char
from cleartrace.upload.events_arrow import EVENT_SCHEMA
from cleartrace.upload.retiming import retime

MS = 1_000_000
T0 = 1_760_000_000_000_000_000  # a wall-clock start, as events leave a device
KEYSTROKES = 200
SHIFT = 0xFFE1
MODIFIERS = (
    0xFFE1,
    0xFFEE,
)  # Shift_L .. Hyper_R: Shift, Control, Caps/Shift Lock, Meta, Alt, Super
PACE_NS = 10 * MS
KEYS = "abcdefghijklmnopqrstuvwxyz ,."
LEFT_HAND = set("qwertasdfgzxcvb")
P_PAUSE = 0.07
FLIGHT_CAP_MS = 1500.0
_VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "report meeting budget schedule invoice customer project review update draft release "
    "please send me your notes about quarterly figures before monday morning thanks again "
    "team office account order payment delivery question answer problem solution system "
    "network server client contract price market quality service support training"
)
WORDS = _VOCABULARY.split()


@dataclass(frozen=True)
class Typist:
    """One synthetic person: log-scale means, spreads and per-key, per-pair offsets."""

    flight_mu: float
    flight_sigma: float
    hold_mu: float
    hold_sigma: float
    pair_offset: np.ndarray  # [key, key], log scale, population + own
    hold_offset: np.ndarray  # [key], log scale
    shift_lag_mu: float


def _lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """mu and sigma of the log-normal with this mean and standard deviation."""
    sigma2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2), float(np.sqrt(sigma2))


def population_pairs(rng: np.random.Generator) -> np.ndarray:
    """Every letter pair's offset shared by all typists: some pairs are harder for everyone."""
    n = len(KEYS) + 1  # the last index is Shift
    offsets = rng.normal(0.0, 0.2, size=(n, n))
    hands = [ch in LEFT_HAND for ch in KEYS] + [True]
    for i in range(n):
        for j in range(n):
            if hands[i] != hands[j]:
                offsets[i, j] += np.log(0.85)
    return offsets


def make_typist(rng: np.random.Generator, shared: np.ndarray) -> Typist:
    mu, sigma = _lognormal_params(239.0, 111.0)
    flight_mean = float(np.clip(rng.lognormal(mu, sigma), 100.0, 600.0))
    hmu, hsigma = _lognormal_params(116.0, 20.0)
    hold_mean = float(np.clip(rng.lognormal(hmu, hsigma), 70.0, 180.0))
    flight_sigma = float(rng.uniform(0.25, 0.45))
    hold_sigma = float(rng.uniform(0.15, 0.30))
    return Typist(
        # Means of the log-normal keystroke times equal the drawn person-level means.
        flight_mu=np.log(flight_mean) - flight_sigma**2 / 2,
        flight_sigma=flight_sigma,
        hold_mu=np.log(hold_mean) - hold_sigma**2 / 2,
        hold_sigma=hold_sigma,
        pair_offset=shared + rng.normal(0.0, 0.25, size=shared.shape),
        hold_offset=rng.normal(0.0, 0.15, size=len(KEYS) + 1),
        shift_lag_mu=float(np.log(rng.uniform(60.0, 200.0))),
    )


def texts(seed: int, count: int) -> list[str]:
    """`count` texts of `KEYSTROKES` characters, the same for every typist."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for _ in range(count):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < KEYSTROKES + 1:
            sentence = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(5, 13)))]
            sentence[0] = sentence[0].capitalize()
            if len(sentence) > 6 and rng.random() < 0.5:
                sentence[3] += ","
            sentence[-1] += "."
            words.extend(sentence)
        out.append(" ".join(words)[:KEYSTROKES])
    return out


def type_text(typist: Typist, text: str, rng: np.random.Generator) -> pa.Table:
    """The key events of `typist` typing `text`, as an `EVENT_SCHEMA` table after a focus event."""
    shift = len(KEYS)
    events: list[tuple[float, int, int]] = []  # (ms, kind, keysym)
    t = last = 0.0
    prev = KEYS.index(" ")
    shift_up = -1  # where in `events` the release of a Shift still to be placed is

    def press(key: int, keysym: int, pause: bool) -> tuple[float, float]:
        nonlocal t, last, prev, shift_up
        flight = rng.lognormal(
            typist.flight_mu + typist.pair_offset[prev, key], typist.flight_sigma
        )
        t += min(flight, FLIGHT_CAP_MS)
        if pause:
            t = max(t, last + TYPING_PAUSE_NS / MS + rng.lognormal(np.log(1500.0), 0.6))
        if shift_up >= 0:
            # Shift is let go before the next press, or that letter would be a capital too.
            ms, kind, keysym_ = events[shift_up]
            capital_at = events[shift_up + 1][0]
            events[shift_up] = (min(ms, max(t - 5.0, capital_at + 1.0)), kind, keysym_)
            shift_up = -1
        hold = rng.lognormal(typist.hold_mu + typist.hold_offset[key], typist.hold_sigma)
        up = t + float(np.clip(hold, 30.0, 400.0))
        events.extend([(t, int(Kind.KEY_DOWN), keysym), (up, int(Kind.KEY_UP), keysym)])
        prev = key
        return t, up

    for i, ch in enumerate(text):
        pause = i > 0 and text[i - 1] == " " and rng.random() < P_PAUSE
        key = KEYS.index(ch.lower())
        if ch.isupper():
            press(shift, SHIFT, pause)
            at = len(events) - 1
            down, up = press(key, keysym_of_char(ch), False)
            lag = rng.lognormal(typist.shift_lag_mu, 0.3)
            events[at] = (down + lag, int(Kind.KEY_UP), SHIFT)
            last, shift_up = max(up, down + lag, last), at
        else:
            last = max(press(key, keysym_of_char(ch), pause)[1], last)
    events.sort(key=lambda e: e[0])
    shifted = False
    for i, (ms, kind, keysym) in enumerate(events):
        if keysym == SHIFT:
            shifted = kind == int(Kind.KEY_DOWN)
        elif kind == int(Kind.KEY_UP) and not shifted and chr(keysym).isupper():
            # X names a release by the modifiers held then: Shift let go first, "h".
            events[i] = (ms, kind, keysym_of_char(chr(keysym).lower()))
    n = len(events) + 1
    t_ns = [T0] + [T0 + MS + round(ms * MS) for ms, _, _ in events]
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    return pa.Table.from_arrays(
        [
            pa.array(t_ns, pa.int64()),
            pa.array([int(Kind.FOCUS)] + [k for _, k, _ in events], pa.uint8()),
            pa.array([0] + [a for _, _, a in events], pa.int32()),
            zeros,
            zeros,
            zeros,
            pa.array(["gedit"] + [None] * (n - 1), pa.string()),
            pa.array([None] * n, pa.string()),
        ],
        schema=EVENT_SCHEMA,
    )


def key_runs(table: pa.Table) -> list[np.ndarray]:
    """The row numbers of the key events of each typing run (split at `TYPING_PAUSE_NS`)."""
    t = table.column("t_ns").to_numpy()
    kind = table.column("kind").to_numpy()
    keys = np.flatnonzero((kind == Kind.KEY_DOWN) | (kind == Kind.KEY_UP))
    if keys.size == 0:
        return []
    gaps = np.diff(t[keys], prepend=t[keys[0]] - TYPING_PAUSE_NS)
    return np.split(keys, np.flatnonzero(gaps >= TYPING_PAUSE_NS)[1:])


def spread(table: pa.Table) -> pa.Table:
    """Each typing run's key events spread evenly between the run's first and last event."""
    t = table.column("t_ns").to_numpy().copy()
    for run in key_runs(table):
        t[run] = np.linspace(t[run[0]], t[run[-1]], run.size).round().astype(np.int64)
    return table.set_column(0, "t_ns", pa.array(t, pa.int64()))


def ordered(table: pa.Table) -> pa.Table:
    """Each typing run's key events at a 10 ms pace, in the order they came."""
    t = table.column("t_ns").to_numpy().copy()
    for run in key_runs(table):
        step = min(PACE_NS, (t[run[-1]] - t[run[0]]) // max(run.size - 1, 1))
        t[run] = t[run[0]] + step * np.arange(run.size)
    return table.set_column(0, "t_ns", pa.array(t, pa.int64()))


# --- the attacker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """Which keys' holds and which pairs' flights the attacker averages (the commonest)."""

    keys: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]


def key_index(keysym: int) -> int:
    return len(KEYS) if keysym == SHIFT else KEYS.index(chr(keysym).lower())


def key_strokes(text: str) -> list[int]:
    """The physical keys pressed to type `text`, Shift before each capital."""
    out: list[int] = []
    for ch in text:
        out.extend([len(KEYS)] if ch.isupper() else [])
        out.append(KEYS.index(ch.lower()))
    return out


def choose_features(corpus: Sequence[str], n_keys: int = 24, n_pairs: int = 40) -> Features:
    """The keys and pairs the texts use most; the texts are the same for everyone."""
    key_counts: dict[int, int] = {}
    pair_counts: dict[tuple[int, int], int] = {}
    for text in corpus:
        strokes = key_strokes(text)
        for k in strokes:
            key_counts[k] = key_counts.get(k, 0) + 1
        for pair in pairwise(strokes):
            pair_counts[pair] = pair_counts.get(pair, 0) + 1
    keys = sorted(key_counts, key=lambda k: -key_counts[k])[:n_keys]
    pairs = sorted(pair_counts, key=lambda p: -pair_counts[p])[:n_pairs]
    return Features(tuple(keys), tuple(pairs))


@dataclass
class Timing:
    """One sample's dwell and flight times (ms), per key and per pair, and its runs."""

    holds: list[tuple[int, float]]
    flights: list[tuple[tuple[int, int], float]]
    rollovers: int
    runs: int
    shifts: int
    presses: int
    span_s: float


def timing(table: pa.Table) -> Timing:
    """Holds (down to up of a key) and flights (down to the next down in the same typing run)."""
    t = table.column("t_ns").to_numpy()
    kind = table.column("kind").to_numpy()
    keysym = table.column("a").to_numpy()
    keys = np.flatnonzero((kind == Kind.KEY_DOWN) | (kind == Kind.KEY_UP))
    gaps = np.diff(t[keys], prepend=t[keys[0]] - TYPING_PAUSE_NS)
    run_of = np.cumsum(gaps >= TYPING_PAUSE_NS)
    held: dict[int, int] = {}
    presses = int((kind[keys] == Kind.KEY_DOWN).sum())
    span_s = max(int(t[keys[-1]] - t[keys[0]]), 1) / 1e9
    out = Timing([], [], 0, int(run_of[-1]), 0, presses, span_s)
    last: tuple[int, int, int] | None = None  # (run, key, t) of the last press
    for i, run in zip(keys.tolist(), run_of.tolist(), strict=True):
        key, now = key_index(int(keysym[i])), int(t[i])
        if kind[i] == Kind.KEY_DOWN:
            if last is not None and last[0] == run:
                out.flights.append(((last[1], key), (now - last[2]) / MS))
                out.rollovers += bool(held)
            out.shifts += key == len(KEYS)
            held[key] = now
            last = (run, key, now)
        elif key in held:
            out.holds.append((key, (now - held.pop(key)) / MS))
    return out


GROUPS = ("holds", "flights", "overall", "run_starts")


def vector(sample: Timing, features: Features) -> dict[str, list[float]]:
    """The attacker's features of one sample, by group (`GROUPS`).

    `holds`: per-key mean log hold; `flights`: per-pair mean log flight (a
    key or pair missing from the sample takes the sample's mean); `overall`:
    mean and spread of the log holds and flights and the share of presses
    made while another key was still held; `run_starts`: presses per second
    from the sample's first key event to its last, pauses included, which is
    what the starts of its typing runs say of its speed.
    """
    holds = np.log([ms for _, ms in sample.holds])
    flights = np.log([ms for _, ms in sample.flights])
    per_key: dict[int, list[float]] = {}
    for (key, _), v in zip(sample.holds, holds.tolist(), strict=True):
        per_key.setdefault(key, []).append(v)
    per_pair: dict[tuple[int, int], list[float]] = {}
    for (pair, _), v in zip(sample.flights, flights.tolist(), strict=True):
        per_pair.setdefault(pair, []).append(v)
    hold_mean, flight_mean = float(holds.mean()), float(flights.mean())
    return {
        "holds": [float(np.mean(per_key.get(k, [hold_mean]))) for k in features.keys],
        "flights": [float(np.mean(per_pair.get(p, [flight_mean]))) for p in features.pairs],
        "overall": [
            hold_mean,
            float(holds.std()),
            flight_mean,
            float(flights.std()),
            sample.rollovers / max(len(sample.flights), 1),
        ],
        "run_starts": [sample.presses / sample.span_s],
    }


ATTACKERS: dict[str, Callable[[], Any]] = {
    "knn": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1)),
    "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
}


def attack(x: np.ndarray, y: np.ndarray, text: np.ndarray, seed: int) -> dict[str, float]:
    """Top-1 accuracy of each attacker and the better of them.

    Every sample is held out once (k-fold over the texts): the attacker is
    trained on the same people typing other texts, never on the held-out
    sample's text, so a sample whose features say only what was typed is
    not matched to another person who typed the same.
    """
    folds = GroupKFold(n_splits=min(5, len(np.unique(text))), shuffle=True, random_state=seed)
    right = dict.fromkeys(ATTACKERS, 0)
    for train, test in folds.split(x, y, groups=text):
        for name, make in ATTACKERS.items():
            model = make().fit(x[train], y[train])
            right[name] += int((model.predict(x[test]) == y[test]).sum())
    scores = {name: round(n / len(y), 3) for name, n in right.items()}
    scores["best"] = max(scores.values())
    return scores


VARIANTS: dict[str, Callable[[pa.Table], pa.Table]] = {
    "raw": lambda table: table,
    "retimed": retime,
    "spread": spread,
    "ordered": ordered,
}


def simulate(seed: int, n_typists: int, n_samples: int) -> list[tuple[int, int, pa.Table]]:
    """(typist, text, events) of every typist typing every text, from `seed` alone."""
    rng = np.random.default_rng(seed)
    shared = population_pairs(rng)
    typists = [make_typist(rng, shared) for _ in range(n_typists)]
    return [
        (p, i, type_text(typist, text, np.random.default_rng([seed, 2, p, i])))
        for p, typist in enumerate(typists)
        for i, text in enumerate(texts(seed, n_samples))
    ]


def typing_figures(timings: Sequence[Timing]) -> dict[str, float]:
    """What the raw samples look like, to hold against the published figures."""
    flights = [ms for s in timings for _, ms in s.flights]
    return {
        "mean_flight_ms": round(float(np.mean(flights)), 1),
        "mean_hold_ms": round(float(np.mean([ms for s in timings for _, ms in s.holds])), 1),
        "runs_per_sample": round(float(np.mean([s.runs for s in timings])), 2),
        "shifted_per_sample": round(float(np.mean([s.shifts for s in timings])), 2),
        "rollover_share": round(sum(s.rollovers for s in timings) / len(flights), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--typists", type=int, default=20, help="synthetic typists (≥ 2)")
    parser.add_argument("--samples", type=int, default=20, help="samples per typist (≥ 2)")
    args = parser.parse_args()
    if args.typists < 2 or args.samples < 2:
        parser.error("--typists and --samples must be at least 2")
    started = time.perf_counter()
    samples = simulate(args.seed, args.typists, args.samples)
    features = choose_features(texts(args.seed, args.samples))
    y = np.array([p for p, _, _ in samples])
    text = np.array([i for _, i, _ in samples])
    accuracy: dict[str, dict[str, float]] = {}
    by_features: dict[str, dict[str, float]] = {}
    figures: dict[str, float] = {}
    for name, variant in VARIANTS.items():
        timings = [timing(variant(table)) for _, _, table in samples]
        figures = figures or typing_figures(timings)
        groups = [vector(s, features) for s in timings]
        x = {g: np.array([v[g] for v in groups]) for g in GROUPS}
        accuracy[name] = attack(np.hstack([x[g] for g in GROUPS]), y, text, args.seed)
        by_features[name] = {g: attack(x[g], y, text, args.seed)["best"] for g in GROUPS}
    chance = 1 / args.typists
    result: dict[str, Any] = {
        "benchmark": "identifiability",
        "seed": args.seed,
        "typists": args.typists,
        "samples_per_typist": args.samples,
        "keystrokes_per_sample": KEYSTROKES,
        "chance": round(chance, 4),
        "twice_chance": round(2 * chance, 4),
        "accuracy": accuracy,
        "raw_identifies": accuracy["raw"]["best"] >= 0.8,
        **{
            f"{name}_within_twice_chance": accuracy[name]["best"] <= 2 * chance
            for name in VARIANTS
            if name != "raw"
        },
        "by_features": by_features,
        "typing": figures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
