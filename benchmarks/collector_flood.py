"""Collector memory under stalled uploads: many clients send most of a large body, then stop.

Prints one JSON object. A real `cleartrace org serve` on 127.0.0.1 (its own
process, so its memory is its own) enrols a few devices and takes one
normal upload; then --clients raw sockets each PUT a bundle declaring
--declared-mb, send --body-mb of it and stall. A third carry no valid bundle
(strangers); a third start with the real header of an enrolled device (someone
who copied one, without the device's request signature) and junk after it; a
third are enrolled devices, signing their requests, that stall their bodies.
Meanwhile --tricklers more sockets send a request head a byte a second (and
never finish it) to hold connections. Reported: the collector's resident
memory (VmRSS from /proc) before, its peak (VmHWM) over the attack, the bound
it must stay under (before + --body-memory-mb + 48 MiB for connections and
allocator slack), what each client was answered, how long the collector let
the slowest trickler hold its connection, and whether an enrolled device can
upload while the tricklers are at it. The run fails (exit status 1, saying
what) when an enrolled device's upload is refused, the peak passes the bound,
or a stalled upload is accepted.

Usage: python benchmarks/collector_flood.py [--clients N] [--body-mb M]
[--declared-mb M] [--max-bundle-mb M] [--body-memory-mb M] [--body-timeout S]
[--header-timeout S] [--tricklers N]
Omitting the collector's options (or giving 0) runs it with its defaults,
which is also how to measure a collector that has no such options.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.formats import b64url
from cleartrace.org.keys import generate, load_private
from cleartrace.org.registry import Registry
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload

#: What connections and the allocator may add to the bodies' budget.
SLACK_MB = 48
DEVICES = 4


def _status(pid: int, field: str) -> float:
    """A /proc/PID/status memory field, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _start(data: Path, args: list[str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "cleartrace", "org", "serve", "--data", str(data), "--port", "0"]
    log = data.parent / "collector.log"
    with log.open("w") as err:
        proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(30):
            proc.kill()
            raise SystemExit("the collector did not start")
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.wait(timeout=30)
        said = log.read_text().strip()[-500:]
        raise SystemExit(f"the collector did not start (exit status {proc.returncode}): {said}")
    return proc, url


def _bundle(key: Ed25519PrivateKey, subject: str, org: Any) -> tuple[str, bytes]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = {"seq": 0, "hash": GENESIS}
    raw = build_bundle(
        header_fields={
            "subject": subject,
            "session": None,
            "interval": None,
            "created": now,
            "ledger": {"base": head, "head": head},
            "policy": {"id": "bench", "version": 1, "sha256": "2" * 64},
            "counts": {},
            "events": 0,
            "redactions": [],
            "timing": "even",
        },
        ledger=[],
        events_ipc=b"",
        org_key=org.bundle_public,
        device_key=key,
    )
    return hashlib.sha256(raw).hexdigest(), raw


def _enrol(url: str, token: str) -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    unsigned = {
        "token": token,
        "device_public_key": b64url(key.public_key().public_bytes_raw()),
        "policy_sha256": None,
    }
    body = {**unsigned, "signature": b64url(key.sign(rfc8785.dumps(unsigned)))}
    r = requests.post(f"{url}/v1/enroll", json=body, timeout=30)
    r.raise_for_status()
    return key, str(r.json()["subject"])


def _trickle(address: tuple[str, int], stop: threading.Event) -> float:
    """Send a request head a byte a second until the collector closes; seconds it took."""
    started = time.monotonic()
    head = b"PUT /v1/bundles/" + b"ab" * 32 + b" HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 4096
    with socket.create_connection(address, timeout=10) as sock:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if stop.wait(1.0):
                break
    return time.monotonic() - started


def _stall(
    address: tuple[str, int],
    head: bytes,
    body: memoryview,
    declared: int,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """PUT with `declared` bytes announced, send `body`, stop; returns the answer.

    With `key`, the request is signed as that device's (an enrolled device stalling).
    """
    sock = socket.create_connection(address, timeout=10)
    try:
        name = uuid.uuid4().hex * 2
        auth = f"{AUTH_HEADER}: {sign_upload(key, 'PUT', name)}\r\n" if key is not None else ""
        request = (
            f"PUT /v1/bundles/{name} HTTP/1.1\r\nHost: x\r\n{auth}"
            f"Content-Length: {declared}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        try:
            sock.sendall(request.encode() + head)
            sock.sendall(body)
        except TimeoutError:
            pass  # the collector stopped reading: the stall it is meant to survive
        except OSError:
            return "closed"
        sock.settimeout(60)
        try:
            answer = sock.recv(64)
        except OSError:
            return "closed"
        parts = answer.split(b" ", 2)
        return parts[1].decode() if len(parts) > 1 else "closed"
    finally:
        sock.close()


def run(options: argparse.Namespace) -> dict[str, Any]:
    extra = []
    for flag in ("max_bundle_mb", "body_memory_mb", "body_timeout", "header_timeout"):
        value = getattr(options, flag)
        if value:
            extra += ["--" + flag.replace("_", "-"), str(value)]
    with tempfile.TemporaryDirectory() as tmp:
        org_dir = Path(tmp) / "keys"
        generate(org_dir)
        org = load_private(org_dir)
        data = Path(tmp) / "data"
        data.mkdir()
        registry = Registry.open(data)
        tokens = registry.issue_tokens(DEVICES + 1)
        registry.close()
        proc, url = _start(data, extra)
        try:
            parts = urlsplit(url)
            address = (parts.hostname or "127.0.0.1", parts.port or 80)
            devices = [_enrol(url, t) for t in tokens[:DEVICES]]
            key, subject = _enrol(url, tokens[DEVICES])
            name, raw = _bundle(key, subject, org)
            warm = requests.put(
                f"{url}/v1/bundles/{name}",
                data=raw,
                timeout=30,
                headers={AUTH_HEADER: sign_upload(key, "PUT", name)},
            ).status_code
            before = _status(proc.pid, "VmRSS")
            headers = [_bundle(k, s, org)[1] for k, s in devices]
            heads = [h[: 12 + int.from_bytes(h[8:12], "big")] for h in headers]
            body = os.urandom(int(options.body_mb * 2**20))
            declared = int(options.declared_mb * 2**20)
            answers: list[str] = []
            lock = threading.Lock()

            def client(i: int) -> None:
                kind = i % 3  # a stranger, a copied header, an enrolled device stalling
                head = heads[i % len(heads)] if kind else b""
                signer = devices[i % len(devices)][0] if kind == 2 else None
                answer = _stall(address, head, memoryview(body)[len(head) :], declared, signer)
                with lock:
                    answers.append(answer)

            stop = threading.Event()
            held: list[float] = []

            def trickler() -> None:
                seconds = _trickle(address, stop)
                with lock:
                    held.append(seconds)

            started = time.perf_counter()
            tricklers = [threading.Thread(target=trickler) for _ in range(options.tricklers)]
            threads = [threading.Thread(target=client, args=(i,)) for i in range(options.clients)]
            for t in [*tricklers, *threads]:
                t.start()
            for t in threads:
                t.join()
            attack_s = time.perf_counter() - started
            # An enrolled device still gets through, the tricklers still at it.
            late_key, late_subject = devices[0]
            late_name, late_raw = _bundle(late_key, late_subject, org)
            late = requests.put(
                f"{url}/v1/bundles/{late_name}",
                data=late_raw,
                timeout=60,
                headers={AUTH_HEADER: sign_upload(late_key, "PUT", late_name)},
            )
            stop.set()
            for t in tricklers:
                t.join()
            peak = _status(proc.pid, "VmHWM")
            after = _status(proc.pid, "VmRSS")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            if proc.stdout is not None:
                proc.stdout.close()
    budget = options.body_memory_mb if options.body_memory_mb is not None else 4 * 64
    bound = before + budget + SLACK_MB
    return {
        "clients": options.clients,
        "declared_mb": options.declared_mb,
        "sent_mb_each": options.body_mb,
        "collector_args": extra,
        "warm_upload": warm,
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(after, 1),
        "bound_mb": round(bound, 1),
        "within_bound": peak <= bound,
        "answers": dict(collections.Counter(answers)),
        "attack_s": round(attack_s, 1),
        "upload_after": late.status_code,
        "tricklers": options.tricklers,
        "trickler_held_max_s": round(max(held), 1) if held else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--body-mb", type=float, default=60)
    parser.add_argument("--declared-mb", type=float, default=64)
    parser.add_argument("--max-bundle-mb", type=float)
    parser.add_argument("--body-memory-mb", type=float)
    parser.add_argument("--body-timeout", type=float, default=5)
    parser.add_argument("--header-timeout", type=float, default=2)
    parser.add_argument("--tricklers", type=int, default=20)
    result = run(parser.parse_args())
    json.dump(result, sys.stdout)
    print()
    failures = _failures(result)
    if failures:
        sys.exit("collector_flood benchmark: " + "; ".join(failures))


def _failures(result: dict[str, Any]) -> list[str]:
    """What the collector got wrong: an upload refused, memory past its bound, a
    stalled upload accepted."""
    out = []
    if result["warm_upload"] != 201:
        out.append(f"the enrolled device's first upload was answered {result['warm_upload']}")
    if result["upload_after"] != 201:
        out.append(
            f"the enrolled device's upload during the attack was answered {result['upload_after']}"
        )
    if not result["within_bound"]:
        out.append(
            f"the collector's peak memory {result['rss_peak_mb']} MB is past its bound "
            f"{result['bound_mb']} MB"
        )
    accepted = {code: n for code, n in result["answers"].items() if code.startswith("2")}
    if accepted:
        out.append(f"stalled uploads were accepted: {accepted}")
    return out


if __name__ == "__main__":
    main()
