"""Fleet benchmark: two collectors on PostgreSQL behind nginx, against one on SQLite.

Prints one JSON object. Both set-ups store bundles in an S3-compatible
server (moto, its own process on 127.0.0.1, as the blobstore tests use) and
are measured in the same run, with the same devices' workload:

- "fleet": Debian's nginx on 127.0.0.1 balancing (least connections, bodies
  streamed through, kept-alive upstream connections) two `cleartrace org
  serve --state postgresql://…` processes sharing one PostgreSQL 15 cluster
  (a throwaway one, durable as a real server: fsync on commit);
- "single": one `cleartrace org serve` on DATA/collector.db, reached directly.

--devices simulated devices (default 1000) each enrol with a token of their
own, then upload --bundles-per-device bundles (a chain: each builds on the
last head) of --events synthetic input events, sealed and signed by the
project's own `build_bundle`. Enrolment is timed, then bundles are built
(not timed), then uploaded by --concurrency client threads spread over
several client processes, each with a kept-alive connection, a device's
bundles in order. Reported per set-up: enrolments/s, bundles/s and MB/s
over the upload phase's wall clock, p50/p99 of each PUT's latency as the
client saw it, and what was lost or duplicated: bundles acknowledged but
missing from the bucket or the registry, registry rows beyond the distinct
bundles, bundles acknowledged as new (201) more than once, and devices whose
witnessed head is not their last bundle's; and the CPU seconds each server
part (collectors, PostgreSQL, nginx, the S3 server) spent over the upload
phase, with the collectors' per bundle. Everything, the clients included,
shares this machine's cores: on two, the set-ups are bound by CPU, and the
collectors' CPU per bundle is the figure that says how many processes a
load needs.

Usage: python benchmarks/fleet.py [--devices N] [--bundles-per-device N]
[--events N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import requests
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.formats import b64url
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.org.state import open_state
from cleartrace.upload.events_arrow import encode_events
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload

# The repository's root, for the test helpers: the throwaway PostgreSQL cluster and the
# synthetic events the collector tests upload.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.org_device import synthetic_events
from tests.support.postgres import postgres_cluster

from upload import device_bundles  # benchmarks/upload.py: this script's directory is on the path

MB = 1_000_000
CLIENT_PROCESSES = 4
WALL_OFFSET = 1_764_000_000_000_000_000
NGINX = "/usr/sbin/nginx"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_http(url: str, proc: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within 60 s")


@contextmanager
def _process(argv: list[str], what: str, **kw: Any) -> Any:
    proc = subprocess.Popen(argv, start_new_session=True, **kw)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _collector(
    stack: ExitStack, data: Path, store: str, endpoint: str, state: str | None
) -> tuple[str, int]:
    argv = [
        *[sys.executable, "-m", "cleartrace", "org", "serve", "--data", str(data), "--port", "0"],
        *["--store", store, "--s3-endpoint", endpoint, "--max-connections", "4000"],
        *["--enroll-rate", "1000000/m", "--enroll-rate-total", "1000000/m"],
        *(["--state", state] if state else []),
    ]
    env = {**os.environ, **S3_ENV}
    log = (data.parent / f"{data.name}.log").open("w")
    stack.callback(log.close)
    proc = stack.enter_context(
        _process(argv, "a collector", stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        raise RuntimeError(f"a collector did not start; see {log.name}")
    return str(line), proc.pid


def _nginx(stack: ExitStack, root: Path, upstreams: list[str]) -> tuple[str, int]:
    port = _free_port()
    servers = "".join(f"server {urllib.parse.urlsplit(u).netloc};" for u in upstreams)
    temp = " ".join(f"{k}_temp_path {root}/{k};" for k in ("client_body", "proxy", "fastcgi"))
    temp += f" uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;"
    (root / "nginx.conf").write_text(
        f"user root; worker_processes 1; daemon off; pid {root}/nginx.pid;"
        f" error_log {root}/error.log warn; events {{ worker_connections 4096; }}"
        f" http {{ access_log off; {temp} client_max_body_size 64m;"
        f" upstream collectors {{ least_conn; {servers} keepalive 64; }}"
        f" server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://collectors;"
        ' proxy_http_version 1.1; proxy_set_header Connection "";'
        " proxy_set_header X-Forwarded-For $remote_addr;"
        " proxy_request_buffering off; proxy_read_timeout 300s; } } }"
    )
    proc = stack.enter_context(
        _process([NGINX, "-p", str(root), "-c", str(root / "nginx.conf")], "nginx")
    )
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/v1/policy", proc, "nginx")
    return url, proc.pid


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds so far of `pids` and of their children (PostgreSQL's
    backends, nginx's worker), from /proc."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    ticks = sum(t for pid, (ppid, t) in stats.items() if pid in pids or ppid in pids)
    return ticks / os.sysconf("SC_CLK_TCK")


def _enrol(url: str, token: str, key: Ed25519PrivateKey) -> tuple[str, float]:
    unsigned = {
        "token": token,
        "device_public_key": b64url(key.public_key().public_bytes_raw()),
        "policy_sha256": None,
    }
    body = {**unsigned, "signature": b64url(key.sign(rfc8785.dumps(unsigned)))}
    t0 = time.perf_counter()
    r = requests.post(f"{url}/v1/enroll", json=body, timeout=120)
    r.raise_for_status()
    return str(r.json()["subject"]), time.perf_counter() - t0


def _chain(
    org: OrgKeys, key: Ed25519PrivateKey, subject: str, ipc: bytes, events: int, n: int
) -> tuple[list[tuple[str, bytes]], list[Any]]:
    """`n` bundles of one device, each on the last one's head, as (name, bytes),
    and the last head; built as benchmarks/upload.py builds them."""
    raws, head = device_bundles(org, ipc, events, subject, key, n)
    return [(hashlib.sha256(raw).hexdigest(), raw) for raw in raws], list(head)


#: Every device's signed uploads, set before the client processes fork (so they
#: inherit it rather than receive it pickled): [[(name, bytes, auth), ...], ...].
_JOBS: list[list[tuple[str, bytes, str]]] = []


def _client(job: tuple[str, int, int, int]) -> list[Any]:
    """A client process: every `step`-th device from `first`, over `threads`
    kept-alive connections, each device's bundles in order."""
    url, first, step, threads = job
    devices = _JOBS[first::step]
    netloc = urllib.parse.urlsplit(url).netloc

    def one_thread(mine: list[list[tuple[str, bytes, str]]]) -> list[Any]:
        conn = http.client.HTTPConnection(netloc, timeout=300)
        out = []
        for bundles in mine:
            for name, raw, auth in bundles:
                t0 = time.perf_counter()
                conn.request("PUT", f"/v1/bundles/{name}", body=raw, headers={AUTH_HEADER: auth})
                answer = conn.getresponse()
                answer.read()
                out.append((name, answer.status, time.perf_counter() - t0))
        conn.close()
        return out

    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(one_thread, [devices[i::threads] for i in range(threads)])
    return [r for part in parts for r in part]


def run_setup(
    name: str, url: str, state: tuple[Path, str | None], bucket: str, args: argparse.Namespace,
    org: OrgKeys, ipc: bytes, parts_of: dict[str, list[int]],
) -> dict[str, Any]:  # fmt: skip
    registry = open_state(*state)
    tokens = [t for i in range(0, args.devices, 10_000) for t in
              registry.issue_tokens(min(10_000, args.devices - i))]  # fmt: skip
    keys = [Ed25519PrivateKey.generate() for _ in tokens]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        enrolled = list(
            pool.map(lambda kt: _enrol(url, kt[1], kt[0]), zip(keys, tokens, strict=True))
        )
    enrol_s = time.perf_counter() - t0
    chains = [
        _chain(org, k, subject, ipc, args.events, args.bundles_per_device)
        for k, (subject, _) in zip(keys, enrolled, strict=True)
    ]
    # Signed just before the clock starts: a request signature is good for five minutes.
    _JOBS[:] = [
        [(n, raw, sign_upload(k, "PUT", n)) for n, raw in chain]
        for k, (chain, _) in zip(keys, chains, strict=True)
    ]
    per_process = max(1, args.concurrency // CLIENT_PROCESSES)
    cpu0 = {part: _cpu_s(pids) for part, pids in parts_of.items()}
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(CLIENT_PROCESSES) as pool:
        parts = pool.map(
            _client, [(url, i, CLIENT_PROCESSES, per_process) for i in range(CLIENT_PROCESSES)]
        )
    upload_s = time.perf_counter() - t0
    cpu = {part: round(_cpu_s(pids) - cpu0[part], 1) for part, pids in parts_of.items()}
    results = [r for part in parts for r in part]
    sent = [n for chain, _ in chains for n, _ in chain]
    size = sum(len(raw) for chain, _ in chains for _, raw in chain)
    latencies = sorted(lat for _, _, lat in results)
    acked = [n for n, status, _ in results if status in (200, 201)]
    created = [n for n, status, _ in results if status == 201]
    in_bucket = set()
    for page in (
        boto3.client("s3", **_s3(args))
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix="fleet/bundles/")
    ):
        in_bucket |= {
            o["Key"].rsplit("/", 1)[1].removesuffix(".ctb") for o in page.get("Contents", [])
        }
    heads = {d.public_key: list(d.head) for d in registry.devices()}
    rows = registry.bundle_count()
    lost = len({n for n in acked if n not in in_bucket or registry.stored(n) is None})
    registry.close()
    wrong_heads = sum(
        heads.get(k.public_key().public_bytes_raw()) != last
        for k, (_, last) in zip(keys, chains, strict=True)
    )
    return {
        "setup": name,
        "devices": len(keys),
        "bundles": len(sent),
        "bundle_bytes_mean": round(size / len(sent)),
        "enrolments_per_s": round(len(keys) / enrol_s, 1),
        "upload_s": round(upload_s, 2),
        "bundles_per_s": round(len(sent) / upload_s, 1),
        "mb_per_s": round(size / upload_s / MB, 2),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "refused": len(results) - len(acked),
        "lost": lost + (len(sent) - len(set(acked))),
        "duplicated": max(0, rows - len(set(acked))) + (len(created) - len(set(created))),
        "heads_wrong": wrong_heads,
        # CPU seconds each server part spent over the upload phase (all on this machine's
        # cores, shared with the clients), and the collectors' per bundle.
        "cpu_s": cpu,
        "collector_cpu_ms_per_bundle": round(cpu["collectors"] / len(sent) * 1000, 2),
    }


def _percentile(values: list[float], pct: int) -> float:
    """The nearest-rank percentile (never below the median, however few values)."""
    ordered = sorted(values)
    return ordered[max(0, -(-pct * len(ordered) // 100) - 1)]


def _s3(args: argparse.Namespace) -> dict[str, Any]:
    """boto3's client arguments for the moto server."""
    return {
        "endpoint_url": args.endpoint,
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--bundles-per-device", type=int, default=2)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), **{k: v for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        org = generate(root / "keys")
        evs = synthetic_events(args.events)
        ipc = encode_events(evs, WALL_OFFSET)
        port = _free_port()
        args.endpoint = f"http://127.0.0.1:{port}"
        moto = stack.enter_context(
            _process(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                "moto",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_http(args.endpoint, moto, "the S3 server")
        s3 = boto3.client("s3", **_s3(args))
        for bucket in ("fleet", "single"):
            s3.create_bucket(Bucket=bucket)
        pg = stack.enter_context(postgres_cluster(durable=True))
        state = pg.new_database()
        first = root / "pg0"
        open_state(first, state).witness_key()  # the fleet's key, copied to the second
        second = root / "pg1"
        second.mkdir(mode=0o700)
        for f in ("witness.key", "witness.pub"):
            (second / f).write_bytes((first / f).read_bytes())
            (second / f).chmod(0o600)
        upstreams = [
            _collector(stack, d, "s3://fleet/fleet", args.endpoint, state) for d in (first, second)
        ]
        (root / "nginx").mkdir()
        url, nginx = _nginx(stack, root / "nginx", [u for u, _ in upstreams])
        postmaster = int((pg.socket_dir / "data" / "postmaster.pid").read_text().split()[0])
        parts = {
            "collectors": [pid for _, pid in upstreams],
            "postgresql": [postmaster],
            "nginx": [nginx],
            "s3": [moto.pid],
        }
        fleet = run_setup("fleet", url, (first, state), "fleet", args, org, ipc, parts)
        single_data = root / "single"
        single, pid = _collector(stack, single_data, "s3://single/fleet", args.endpoint, None)
        parts = {"collectors": [pid], "s3": [moto.pid]}
        alone = run_setup("single", single, (single_data, None), "single", args, org, ipc, parts)
    out["results"] = [fleet, alone]
    json.dump(out, sys.stdout, indent=1)
    print()
    failed = {
        r["setup"]: {k: r[k] for k in ("refused", "lost", "duplicated", "heads_wrong") if r[k]}
        for r in (fleet, alone)
    }
    if any(failed.values()):
        sys.exit(f"fleet benchmark: not every bundle was stored once with its head: {failed}")


if __name__ == "__main__":
    main()
