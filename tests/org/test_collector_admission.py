"""Who gets a place at the collector: connections by their request head's deadline,
uploads by the device's request signature, bodies by their arrival rate, enrolment
attempts by network.

Raw sockets stand in for hostile clients; the collector is a real process.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from cleartrace.consent.records import GENESIS
from cleartrace.errors import NotAdmitted
from cleartrace.org.intake import EnrolmentRates, address_block
from cleartrace.org.keys import OrgKeys
from cleartrace.org.limits import Rate
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.bundle_header import header_end
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload
from tests.support.org_device import Device
from tests.support.org_process import RunningCollector, collector_running
from tests.support.raw_http import answer, enrol_from, header_of, stalled_put

MAX_MB = 1


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """1 MiB bundles, two held at once, a request head given 1 s, a body 3 s."""
    data = tmp_path_factory.mktemp("admission") / "data"
    with collector_running(
        data,
        "--max-bundle-mb",
        str(MAX_MB),
        "--body-memory-mb",
        str(2 * MAX_MB),
        "--body-timeout",
        "3",
        "--header-timeout",
        "1",
        "--max-connections",
        "20",
    ) as running:
        yield running


def enrolled(collector: RunningCollector, org_keys: OrgKeys, n: int = 1) -> list[Device]:
    devices = [Device(org_keys.bundle_public) for _ in range(n)]
    for dev, token in zip(devices, collector.tokens(n), strict=True):
        assert dev.enroll(collector.url, token).status_code == 201
    return devices


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10)


# -- connections: a deadline for the request head ---------------------------------------------


def test_idle_and_trickling_connections_are_closed_and_others_are_served(
    collector: RunningCollector,
) -> None:
    """More idle sockets than --max-connections would shut everyone out for good."""
    kept_alive = connect(collector.url)
    kept_alive.sendall(b"GET /v1/policy HTTP/1.1\r\nHost: c\r\n\r\n")
    assert answer(kept_alive)[0] == 404  # served; the connection stays open
    kept_alive.sendall(b"GET /v1/pol")  # the next request's first bytes, then nothing
    idle = [connect(collector.url) for _ in range(25)]
    trickling = connect(collector.url)
    try:
        trickling.sendall(b"GET /v1/pol")
        with connect(collector.url) as shut_out:  # every place is taken meanwhile
            shut_out.sendall(b"GET /v1/policy HTTP/1.1\r\nHost: c\r\n\r\n")
            assert shut_out.recv(12) == b"HTTP/1.1 503"
        for sock in [*idle, trickling, kept_alive]:
            assert sock.recv(1) == b""  # closed by the collector, not by the timeout here
        r = requests.get(f"{collector.url}/v1/policy", timeout=10)
        assert (r.status_code, r.json()["reason"]) == (404, "no-policy")
    finally:
        for sock in [*idle, trickling, kept_alive]:
            sock.close()


# -- uploads: the device's request signature before any body -------------------------------------


def test_a_copied_header_without_the_device_signature_holds_nothing(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    victim, other, bystander = enrolled(collector, org_keys, 3)
    name = "ab" * 32
    stranger = sign_upload(Device(org_keys.bundle_public).key, "PUT", name)
    # Another key's signature, claiming to be the victim.
    forged = f"device={victim.hex}," + stranger.split(",", 1)[1]
    copiers = [
        stalled_put(collector.url, MAX_MB * 2**20, header_of(victim), name),
        stalled_put(collector.url, MAX_MB * 2**20, header_of(victim), name, auth=forged),
        stalled_put(collector.url, MAX_MB * 2**20, header_of(other), name),
    ]
    try:
        answered = [answer(sock) for sock in copiers]
        assert [(a[0], a[2]["reason"]) for a in answered] == [
            (401, "no-auth"),
            (401, "bad-auth"),
            (401, "no-auth"),
        ]
        # Refused before the body was read: the connection is closed.
        assert all(a[1]["connection"] == "close" for a in answered)
        # The copied devices' slots and the memory budget are free, copiers still connected.
        assert victim.upload(collector.url)[0].status_code == 201
        assert other.upload(collector.url)[0].status_code == 201
        assert bystander.upload(collector.url)[0].status_code == 201
    finally:
        for sock in copiers:
            sock.close()


def test_a_signature_for_one_bundle_is_refused_for_another(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    (device,) = enrolled(collector, org_keys)
    name, raw, _ = device.bundle()
    replayed = device.auth("cd" * 32)
    r = device.put(collector.url, name, raw, headers=replayed)
    assert (r.status_code, r.json()["reason"]) == (401, "bad-auth")
    with stalled_put(collector.url, len(raw), raw[:100], name, auth=replayed[AUTH_HEADER]) as sock:
        status, headers, body = answer(sock)
    assert (status, body["reason"], headers["connection"]) == (401, "bad-auth", "close")
    assert device.put(collector.url, name, raw).status_code == 201


def test_a_request_time_beyond_five_minutes_is_refused_with_the_clock_named(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    (device,) = enrolled(collector, org_keys)
    name, raw, _ = device.bundle()
    for skew in (-400, 400):
        r = device.put(collector.url, name, raw, headers=device.auth(name, time.time() + skew))
        assert (r.status_code, r.json()["reason"]) == (401, "clock-skew")
        assert "set the device's clock" in r.json()["error"]
    assert device.put(collector.url, name, raw).status_code == 201


def test_an_upload_without_a_signature_is_refused(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    (device,) = enrolled(collector, org_keys)
    name, raw, _ = device.bundle()
    r = requests.put(f"{collector.url}/v1/bundles/{name}", data=raw, timeout=30)
    assert (r.status_code, r.json()["reason"]) == (401, "no-auth")


def test_a_body_signed_by_one_device_naming_another_is_refused(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    signer, named = enrolled(collector, org_keys, 2)
    name, raw, _ = named.bundle()
    r = named.put(collector.url, name, raw, headers=signer.auth(name))
    assert (r.status_code, r.json()["reason"]) == (403, "device-mismatch")


def test_a_bundle_header_late_is_cut_off_before_the_body_timeout(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    (device,) = enrolled(collector, org_keys)
    name, raw, _ = device.bundle()
    with stalled_put(collector.url, len(raw), raw[:20], name, signer=device) as sock:
        status, headers, body = answer(sock)
    assert (status, body["reason"], headers["connection"]) == (408, "header-timeout", "close")


# -- bodies: a minimum arrival rate -------------------------------------------------------------


def test_a_trickling_body_is_cut_off_by_the_rate_long_before_the_body_timeout(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    with collector_running(
        tmp_path / "data",
        "--body-timeout",
        "600",
        "--header-timeout",
        "1",
        "--min-body-rate",
        "64",
    ) as running:
        (device,) = enrolled(running, org_keys)
        name, raw, _ = device.bundle(events=5000)
        head = raw[: header_end(raw)]
        sock = stalled_put(running.url, len(raw), head, name, signer=device)
        stop = threading.Event()

        def trickle() -> None:  # 1 KiB every 0.2 s: 5 KiB/s, below the 64 KiB/s asked for
            at = len(head)
            while not stop.wait(0.2) and at < len(raw):
                try:
                    sock.sendall(raw[at : at + 1024])
                except OSError:
                    return
                at += 1024

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            status, headers, body = answer(sock)
        finally:
            stop.set()
            sender.join()
            sock.close()
        assert (status, body["reason"]) == (408, "body-too-slow")
        assert headers["connection"] == "close"
        assert device.put(running.url, name, raw).status_code == 201


# -- enrolment: per network, and malformed attempts cost nothing overall ----------------------


def test_ipv6_addresses_of_one_64_share_one_enrolment_allowance() -> None:
    assert address_block("2001:db8:1:2::1") == address_block("2001:db8:1:2:ffff::9")
    assert address_block("2001:db8:1:2::1") != address_block("2001:db8:1:3::1")
    assert address_block("::ffff:192.0.2.7") == address_block("192.0.2.7")
    assert address_block("192.0.2.7") != address_block("192.0.2.8")
    rates = EnrolmentRates(Rate(3, 3600.0), Rate(1000, 60.0), clock=lambda: 0.0)
    for i in range(3):
        rates.take(f"2001:db8:1:2::{i + 1:x}")
    with pytest.raises(NotAdmitted):
        rates.take("2001:db8:1:2:abcd::1")
    rates.take("2001:db8:1:3::1")  # the next /64 is another network


def test_malformed_enrolments_do_not_use_up_the_overall_allowance(tmp_path: Path) -> None:
    with collector_running(
        tmp_path / "data", "--enroll-rate", "10/m", "--enroll-rate-total", "2/h"
    ) as running:
        parts = urlsplit(running.url)
        for i in range(1, 6):
            conn = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=10, source_address=(f"127.0.0.{i}", 0)
            )
            try:
                conn.request("POST", "/v1/enroll", b'{"token": 1}')
                response = conn.getresponse()
                assert (response.status, json.loads(response.read())["reason"]) == (
                    400,
                    "malformed",
                )
            finally:
                conn.close()
        assert enrol_from(running.url, "127.0.0.9", running.tokens()[0])[0] == 201


# -- memory: a body is held once -------------------------------------------------------------


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_a_large_body_is_held_once_not_twice(tmp_path: Path, org_keys: OrgKeys) -> None:
    """Joining received pieces would hold a body twice, outside what the budget counts."""
    size = 48 * 2**20
    with collector_running(tmp_path / "data") as running:
        (device,) = enrolled(running, org_keys)
        head = {"seq": 0, "hash": GENESIS}
        raw = build_bundle(
            header_fields={
                "subject": device.subject,
                "session": None,
                "interval": None,
                "created": "2026-12-05T12:00:00.000Z",
                "ledger": {"base": head, "head": head},
                "policy": {"id": "acme", "version": 1, "sha256": "2" * 64},
                "counts": {},
                "events": 0,
                "redactions": [],
                "timing": "even",
            },
            ledger=[],
            events_ipc=os.urandom(size),  # the collector does not open the sealed part
            org_key=org_keys.bundle_public,
            device_key=device.key,
        )
        name = hashlib.sha256(raw).hexdigest()
        before = _memory_kib(running.proc.pid, "VmRSS")
        assert device.put(running.url, name, raw).status_code == 201
        grew = _memory_kib(running.proc.pid, "VmHWM") - before
    assert grew < 1.5 * len(raw) / 1024, (grew, len(raw) // 1024)
