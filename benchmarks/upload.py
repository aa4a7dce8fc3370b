"""Upload benchmark: building bundles, and a real collector under 50 concurrent clients.

Prints one JSON object. Two parts:

1. bundle build — a synthetic eight-hour session shaped like a person's input
   (≈60 % moves, 30 % key press/release, clicks, scrolls, a focus change with
   application and title every ~500 events) goes through the uploader's
   consent filter and is encoded as Arrow IPC once (`encode_s`), then sealed
   (HPKE, hybrid ML-KEM-768 + X25519) and signed by `build_bundle`; MB/s is
   bundle bytes over build time.
2. collector — `cleartrace org serve` on 127.0.0.1 (data directory on the
   temp dir's disk, every bundle fsynced), 50 enrolled devices, each a
   separate client process with its own keep-alive connection (the device's
   own `CollectorClient`, each request signed with the device key),
   uploading its chain of bundles as fast as the collector acknowledges
   them. Clock from the moment all clients are told to go until the last
   acknowledgement. The run fails (exit status 1, with the collector's
   answers) unless every bundle was acknowledged as new, stored and indexed
   once, and every device's witnessed head is its last bundle's.

Medians over --repeat runs. Usage: python benchmarks/upload.py [--clients N]
[--bundles-per-client N] [--session-minutes M] [--repeat R]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.events import Event, Kind
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.org.state import open_state
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.client import CollectorClient
from cleartrace.upload.consented import UploadConsent
from cleartrace.upload.events_arrow import encode_events, encode_table, events_table

# The repository's root, for the collector tests' helper: the device's enrolment request.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.org_device import enrolment

MS = 1_000_000
MB = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-calc"]
WALL_OFFSET = 1_764_000_000_000_000_000

# A client: the device's own collector client (one kept-alive session, each PUT signed
# with the device key as it is sent), its bundles in order, told when to go on stdin.
# Each bundle's outcome: 201 (stored now), 200 (stored before), or the refusal's status
# and reason.
CLIENT = """
import json, sys, time
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cleartrace.errors import CollectorRefused, UploadError
from cleartrace.upload.client import CollectorClient
url, files = sys.argv[1], sys.argv[2:]
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.stdin.readline().strip()))
bodies = [(Path(f).stem, Path(f).read_bytes()) for f in files]
client = CollectorClient(url, timeout=(5.0, 300.0))
print("ready", flush=True)
sys.stdin.readline()
codes, heads = [], []
for name, body in bodies:
    try:
        ack = client.put_bundle(name, body, key)
    except CollectorRefused as refused:
        codes.append(f"{refused.status} {refused.reason}".strip())
        continue
    except UploadError as error:
        codes.append(type(error).__name__)
        continue
    codes.append("201" if ack.stored else "200")
    heads.append(list(ack.head))
print(json.dumps({"codes": codes, "heads": heads, "done": time.monotonic()}), flush=True)
"""


def session_events(minutes: float, seed: int = 7) -> list[Event]:
    """A reproducible session of `minutes` shaped like a person's input (~52 events/s)."""
    rnd = random.Random(seed)
    out: list[Event] = []
    t, x, y, end = 0, 640, 400, int(minutes * 60e9)
    while t < end:
        if len(out) % 500 == 0:
            app = rnd.choice(APPS)
            out.append(Event(t, Kind.FOCUS, app=app, title=f"{app} document {rnd.randint(1, 40)}"))
            continue
        r = rnd.random()
        if r < 0.60:
            t += rnd.randint(9, 14) * MS
            x = max(0, min(1919, x + rnd.randint(-6, 6)))
            y = max(0, min(1079, y + rnd.randint(-4, 4)))
            out.append(Event(t, Kind.MOVE, x, y))
        elif r < 0.90:
            key = rnd.choice(b"etaoinshrdlu etaoin ") if rnd.random() < 0.9 else 0xFF08
            t += rnd.randint(40, 160) * MS
            out.append(Event(t, Kind.KEY_DOWN, key))
            t += rnd.randint(30, 90) * MS
            out.append(Event(t, Kind.KEY_UP, key))
        elif r < 0.97:
            t += rnd.randint(100, 600) * MS
            out.append(Event(t, Kind.BUTTON_DOWN, x, y, 1))
            t += rnd.randint(60, 120) * MS
            out.append(Event(t, Kind.BUTTON_UP, x, y, 1))
        else:
            t += rnd.randint(20, 80) * MS
            out.append(Event(t, Kind.SCROLL, x, y, 0, rnd.choice((-1, 1))))
    return out


def bundle_header(
    subject: str, events: int, base: tuple[int, str], head: tuple[int, str]
) -> dict[str, Any]:
    """A bundle header for a benchmark device's session (the collector checks its shape)."""
    return {
        "subject": subject,
        "session": hashlib.sha256(f"{subject}{base}".encode()).hexdigest()[:32],
        "interval": {"start": "2026-12-02T09:00:00.000Z", "end": "2026-12-02T17:00:00.000Z"},
        "created": "2026-12-02T17:05:00.000Z",
        "ledger": {
            "base": {"seq": base[0], "hash": base[1]},
            "head": {"seq": head[0], "hash": head[1]},
        },
        "policy": {"id": "org-policy", "version": 1, "sha256": "2" * 64},
        "counts": {"keys": events},
        "events": events,
        "redactions": [],
        "timing": "even",
    }


def bundle_build(org: OrgKeys, minutes: float, repeat: int) -> dict[str, Any]:
    events = session_events(minutes)
    # The uploader's path: the table, the consent filter (every category
    # consented, so every row is checked and kept), the IPC stream.
    consent = UploadConsent(frozenset(Category), {})
    t0 = time.perf_counter()
    ipc = encode_table(consent.filter(events_table(events, WALL_OFFSET)))
    encode_s = time.perf_counter() - t0
    key = Ed25519PrivateKey.generate()
    header = bundle_header("ab" * 16, len(events), (0, GENESIS), (1, "1" * 64))
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw = build_bundle(
            header_fields=header,
            ledger=[],
            events_ipc=ipc,
            org_key=org.bundle_public,
            device_key=key,
        )
        times.append(time.perf_counter() - t0)
        size = len(raw)
    build_s = statistics.median(times)
    return {
        "session_minutes": minutes,
        "events": len(events),
        "bundle_bytes": size,
        "encode_s": round(encode_s, 4),
        "encode_events_per_s": round(len(events) / encode_s),
        "build_s": round(build_s, 4),
        "build_mb_per_s": round(size / build_s / MB, 1),
        "runs": repeat,
    }


def _serve_command(data: Path) -> list[str]:
    # Limits out of the way: this measures throughput, not the rate limits.
    return [
        *[sys.executable, "-m", "cleartrace", "org", "serve", "--data", str(data)],
        *["--port", "0", "--rate", "1000000/s", "--max-bundle-mb", "256"],
        *["--enroll-rate", "1000000/m", "--enroll-rate-total", "1000000/m"],
    ]


def _enrol(url: str, token: str, key: Ed25519PrivateKey) -> str:
    """Enrol `key` as the device does (a self-signed request), through the device's client."""
    client = CollectorClient(url)
    try:
        subject: str = client.enroll(enrolment(key, token, None))["subject"]
    finally:
        client.close()
    return subject


def device_bundles(
    org: OrgKeys, ipc: bytes, events: int, subject: str, key: Ed25519PrivateKey, n: int
) -> tuple[list[bytes], tuple[int, str]]:
    """A chain of `n` bundles (each one's ledger base is the previous one's head), and
    the last head."""
    out, base = [], (0, GENESIS)
    for _ in range(n):
        record = sign_record(
            make_record(
                seq=base[0] + 1, prev=base[1], kind="recording.resumed", fields={"reason": "person"}
            ),
            key,
        )
        head = (record["seq"], record_hash(record))
        out.append(
            build_bundle(
                header_fields=bundle_header(subject, events, base, head),
                ledger=[record],
                events_ipc=ipc,
                org_key=org.bundle_public,
                device_key=key,
            )
        )
        base = head
    return out, base


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError("a process did not answer in time")
    return proc.stdout.readline().strip()


def collector_run(org: OrgKeys, ipc: bytes, events: int, clients: int, per: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data, bundles_dir = Path(tmp) / "data", Path(tmp) / "out"
        bundles_dir.mkdir()
        server = subprocess.Popen(
            _serve_command(data), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        procs: list[subprocess.Popen[str]] = []
        try:
            url = _read_line(server, 60)
            state = open_state(data)
            tokens = state.issue_tokens(clients)
            state.close()
            files: list[list[str]] = []
            keys, last_heads = [], []
            total = 0
            for token in tokens:
                key = Ed25519PrivateKey.generate()
                chain, head = device_bundles(org, ipc, events, _enrol(url, token, key), key, per)
                names = []
                for raw in chain:
                    path = bundles_dir / f"{hashlib.sha256(raw).hexdigest()}.ctb"
                    path.write_bytes(raw)
                    names.append(str(path))
                    total += len(raw)
                files.append(names)
                keys.append(key)
                last_heads.append(list(head))
            for key, names in zip(keys, files, strict=True):
                proc = subprocess.Popen(
                    [sys.executable, "-c", CLIENT, url, *names],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                procs.append(proc)
                assert proc.stdin is not None
                proc.stdin.write(key.private_bytes_raw().hex() + "\n")
                proc.stdin.flush()
            for p in procs:
                if _read_line(p, 60) != "ready":
                    raise RuntimeError("an upload client did not start; see its error above")
            cpu0, start = _cpu_seconds(server.pid), time.monotonic()
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            reports = [json.loads(_read_line(p, 600)) for p in procs]
            elapsed = max(r["done"] for r in reports) - start
            server_cpu = _cpu_seconds(server.pid) - cpu0
            stored = len(list((data / "bundles").glob("*.ctb")))
            state = open_state(data)
            indexed = state.bundle_count()
            heads = {d.public_key: list(d.head) for d in state.devices()}
            state.close()
        finally:
            for p in procs:
                p.wait(timeout=60)
            server.terminate()
            server.wait(timeout=60)
    codes = collections.Counter(code for r in reports for code in r["codes"])
    wrong_heads = sum(
        heads.get(key.public_key().public_bytes_raw()) != head
        for key, head in zip(keys, last_heads, strict=True)
    )
    return {
        "bundles": clients * per,
        "acknowledged": codes["201"],
        "stored": stored,
        "indexed": indexed,
        "answers": dict(codes),
        "heads_wrong": wrong_heads,
        "bytes": total,
        "seconds": elapsed,
        "bundles_per_s": codes["201"] / elapsed,
        "mb_per_s": total / elapsed / MB,
        "collector_cpu_percent": server_cpu / elapsed * 100,
    }


def _losses(runs: list[dict[str, Any]]) -> list[str]:
    """What went wrong in `runs`: bundles refused, lost or stored twice, heads not moved."""
    out = []
    for i, r in enumerate(runs):
        if not r["acknowledged"] == r["stored"] == r["indexed"] == r["bundles"] or r["heads_wrong"]:
            out.append(
                f"run {i + 1}: {r['bundles']} bundles sent, {r['acknowledged']} acknowledged as "
                f"new, {r['stored']} in data/bundles, {r['indexed']} in the collector's index, "
                f"{r['heads_wrong']} devices' heads not at their last bundle; "
                f"answers {r['answers']}"
            )
    return out


def collector(org: OrgKeys, clients: int, per: int, minutes: float, repeat: int) -> dict[str, Any]:
    events = session_events(minutes, seed=11)
    ipc = encode_events(events, WALL_OFFSET)
    runs = [collector_run(org, ipc, len(events), clients, per) for _ in range(repeat)]
    return {
        "session_minutes": minutes,
        "clients": clients,
        "bundles_per_client": per,
        "bundle_bytes": round(statistics.median(r["bytes"] for r in runs) / (clients * per)),
        "all_acknowledged_and_stored_once": not _losses(runs),
        "losses": _losses(runs),
        "bundles_per_s": round(statistics.median(r["bundles_per_s"] for r in runs), 1),
        "mb_per_s": round(statistics.median(r["mb_per_s"] for r in runs), 1),
        "mb_per_s_runs": [round(r["mb_per_s"], 1) for r in runs],
        "collector_cpu_percent": round(statistics.median(r["collector_cpu_percent"] for r in runs)),
        "target_mb_per_s": 200,
        "runs": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--bundles-per-client", type=int, default=4)
    parser.add_argument(
        "--session-minutes",
        type=float,
        nargs="+",
        default=[480.0, 60.0],
        help="session length of the uploaded bundles, one collector run set per value",
    )
    parser.add_argument("--build-minutes", type=float, default=480.0, help="the large session")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        org = generate(Path(tmp) / "keys")
    result: dict[str, Any] = {"benchmark": "upload"}
    result["bundle_build"] = bundle_build(org, args.build_minutes, max(args.repeat, 5))
    result["collector"] = [
        collector(org, args.clients, args.bundles_per_client, minutes, args.repeat)
        for minutes in args.session_minutes
    ]
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    losses = [loss for c in result["collector"] for loss in c["losses"]]
    if losses:
        sys.exit("upload benchmark: bundles were refused or lost:\n" + "\n".join(losses))


if __name__ == "__main__":
    main()
