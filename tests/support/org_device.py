"""A device as the collector sees it: a key, a signed ledger, bundles, and HTTP calls.

Run as a script, it is the load test's fleet: one process that imports all
this once, then forks one process per device (single-threaded when it forks,
so forking is safe), and prints their reports as JSON::

    python org_device.py URL ORG_PUB_JSON_FILE UPLOADS TOKEN...
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.events import Event, Kind
from cleartrace.formats import b64url
from cleartrace.suites import OrgPublicKey
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.events_arrow import encode_events
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload

POLICY_REF = {"id": "org-policy", "version": 1, "sha256": "2" * 64}


@dataclass(frozen=True)
class Answer:
    """What a test needs of an HTTP response, without the response's socket.

    A kept `requests.Response` keeps its connection open, and an open TLS
    connection holds the collector's graceful shutdown for its TLS close timeout.
    """

    status_code: int
    body: Any
    headers: CaseInsensitiveDict[str]
    text: str

    def json(self) -> Any:
        return self.body


def _answer(r: requests.Response) -> Answer:
    try:
        body = r.json()
    except ValueError:
        body = None
    return Answer(r.status_code, body, CaseInsensitiveDict(r.headers), r.text)


def enrolment(key: Ed25519PrivateKey, token: str, policy_sha256: str | None) -> dict[str, Any]:
    """A signed enrolment request, as the device's enrolment code sends it."""
    unsigned = {
        "token": token,
        "device_public_key": b64url(key.public_key().public_bytes_raw()),
        "policy_sha256": policy_sha256,
    }
    return {**unsigned, "signature": b64url(key.sign(rfc8785.dumps(unsigned)))}


def synthetic_events(n: int, seed: int = 1) -> list[Event]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible synthetic input, not a secret
    out = [Event(0, Kind.FOCUS, app="gedit", title="notes")]
    t = 0
    while len(out) < n:
        t += rnd.randint(5, 120) * 1_000_000
        if rnd.random() < 0.6:
            out.append(Event(t, Kind.MOVE, rnd.randint(0, 1919), rnd.randint(0, 1079)))
        else:
            out.append(Event(t, Kind.KEY_DOWN, rnd.choice(b"etaoin shrdlu")))
    return out[:n]


class Device:
    """An Ed25519 key, a real signed ledger, and the head the collector witnessed."""

    def __init__(self, org_key: OrgPublicKey, key: Ed25519PrivateKey | None = None) -> None:
        self.org_key = org_key
        self.key = key or Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes_raw()
        self.hex = hashlib.sha256(self.public).hexdigest()
        self.device = "sha256:" + self.hex
        self.subject = "0" * 32
        self.ledger: list[dict[str, Any]] = []
        self.witnessed = (0, GENESIS)

    @property
    def head(self) -> tuple[int, str]:
        if not self.ledger:
            return (0, GENESIS)
        return self.ledger[-1]["seq"], record_hash(self.ledger[-1])

    def enroll(self, url: str, token: str, policy_sha256: str | None = None, **kw: Any) -> Any:
        r = _answer(
            requests.post(
                f"{url}/v1/enroll", json=enrolment(self.key, token, policy_sha256), timeout=30, **kw
            )
        )
        if r.status_code == 201:
            self.subject = r.json()["subject"]
        return r

    def append_records(self, n: int) -> None:
        for _ in range(n):
            seq, prev = self.head
            record = make_record(
                seq=seq + 1, prev=prev, kind="recording.resumed", fields={"reason": "person"}
            )
            self.ledger.append(sign_record(record, self.key))

    def bundle(
        self,
        *,
        events: int = 50,
        records: int = 1,
        base: tuple[int, str] | None = None,
        subject: str | None = None,
    ) -> tuple[str, bytes, tuple[int, str]]:
        """A new bundle on top of `base` (default: the witnessed head): (name, bytes, head)."""
        base = base if base is not None else self.witnessed
        self.append_records(records)
        head = self.head
        segment = [r for r in self.ledger if r["seq"] > base[0]]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        evs = synthetic_events(events, seed=len(self.ledger)) if events else []
        raw = build_bundle(
            header_fields={
                "subject": subject or self.subject,
                "session": uuid.uuid4().hex if evs else None,
                "interval": {"start": now, "end": now} if evs else None,
                "created": now,
                "ledger": {
                    "base": {"seq": base[0], "hash": base[1]},
                    "head": {"seq": head[0], "hash": head[1]},
                },
                "policy": POLICY_REF,
                "counts": {"keys": len(evs)} if evs else {},
                "events": len(evs),
                "redactions": [],
                "timing": "even",
            },
            ledger=segment,
            events_ipc=encode_events(evs, 1_764_000_000_000_000_000) if evs else b"",
            org_key=self.org_key,
            device_key=self.key,
        )
        return hashlib.sha256(raw).hexdigest(), raw, head

    def auth(self, name: str, now: float | None = None) -> dict[str, str]:
        """The request header signing a PUT of bundle `name` with this device's key."""
        return {AUTH_HEADER: sign_upload(self.key, "PUT", name, now)}

    def put(self, url: str, name: str, raw: bytes, **kw: Any) -> Any:
        headers = kw.pop("headers", self.auth(name))
        return _answer(
            requests.put(f"{url}/v1/bundles/{name}", data=raw, timeout=60, headers=headers, **kw)
        )

    def upload(self, url: str, **bundle_kw: Any) -> tuple[Any, str, bytes]:
        """Build and PUT one bundle; on 201 the witnessed head moves."""
        name, raw, head = self.bundle(**bundle_kw)
        r = self.put(url, name, raw)
        if r.status_code == 201:
            self.witnessed = head
        return r, name, raw


def run_device(url: str, token: str, org_json: dict[str, Any], uploads: int) -> dict[str, Any]:
    """One device of the load test: enrol, upload `uploads` bundles, replay the last."""
    device = Device(OrgPublicKey.from_json(org_json))
    session = requests.Session()
    # A kept-alive connection the collector closed after its 5 s idle timeout,
    # as this device built its next bundle on a loaded machine, is reset when
    # reused; a PUT of a bundle is idempotent, and the product's uploader
    # retries it (upload/client.py), so this device does too.
    retry = Retry(total=3, allowed_methods=frozenset({"PUT"}), status=0, backoff_factor=0.1)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    r = session.post(f"{url}/v1/enroll", json=enrolment(device.key, token, None), timeout=60)
    assert r.status_code == 201, r.text
    device.subject = r.json()["subject"]
    names, statuses = [], []
    for _ in range(uploads):
        name, raw, head = device.bundle(events=200, records=2)
        r = session.put(f"{url}/v1/bundles/{name}", data=raw, timeout=60, headers=device.auth(name))
        statuses.append(r.status_code)
        assert r.json()["bundle"] == name
        device.witnessed = head
        names.append(name)
    replay = session.put(
        f"{url}/v1/bundles/{names[-1]}", data=raw, timeout=60, headers=device.auth(names[-1])
    )
    return {
        "device": device.hex,
        "names": names,
        "statuses": statuses,
        "replay": [replay.status_code, replay.json()["stored"]],
        "head": list(device.witnessed),
    }


def device_process(
    results: Any, start: Any, url: str, token: str, org_json: dict[str, Any], uploads: int
) -> None:
    """A load-test worker process: wait for the others, run one device, report (or fail)."""
    start.wait(timeout=60)
    try:
        results.put(run_device(url, token, org_json, uploads))
    except BaseException as exc:  # reported to the test, which fails with it
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def main(argv: list[str]) -> None:
    url, org_file, uploads, *tokens = argv
    org_json = json.loads(Path(org_file).read_text())
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start = ctx.Barrier(len(tokens))
    workers = [
        ctx.Process(target=device_process, args=(results, start, url, t, org_json, int(uploads)))
        for t in tokens
    ]
    for w in workers:
        w.start()
    reports = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        if w.exitcode != 0:
            reports.append({"error": f"a device process exited with {w.exitcode}"})
    json.dump(reports, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
