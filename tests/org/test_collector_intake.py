"""What the collector lets in before it holds a body: strangers, stalls, floods, enrolment rates.

Raw sockets stand in for hostile clients: they declare a large body, send
part of it and stop, which an HTTP library would not do.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cleartrace.org.keys import OrgKeys
from cleartrace.upload.bundle_header import MAGIC, MAX_HEADER
from tests.support import REPO
from tests.support.org_device import Device
from tests.support.org_process import RunningCollector, collector_running
from tests.support.raw_http import answer, enrol_from, header_of, stalled_put

MAX_MB = 1
FLOOD = REPO / "benchmarks" / "collector_flood.py"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """1 MiB bundles, two of them held at once, a body given 5 s to arrive (long enough
    for a third client to arrive while two stall, on a loaded two-core machine)."""
    data = tmp_path_factory.mktemp("intake") / "data"
    with collector_running(
        data,
        "--max-bundle-mb",
        str(MAX_MB),
        "--body-memory-mb",
        str(2 * MAX_MB),
        "--body-timeout",
        "5",
    ) as running:
        yield running


@pytest.fixture
def device(collector: RunningCollector, org_keys: OrgKeys) -> Device:
    dev = Device(org_keys.bundle_public)
    assert dev.enroll(collector.url, collector.tokens()[0]).status_code == 201
    return dev


def test_a_stranger_is_refused_before_any_of_a_large_body(
    collector: RunningCollector,
) -> None:
    with stalled_put(collector.url, MAX_MB * 2**20, b"not a bundle") as sock:
        status, headers, body = answer(sock)
        assert (status, body["reason"]) == (401, "no-auth")
        assert headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_an_enrolled_device_sending_junk_is_refused_from_its_first_bytes(
    collector: RunningCollector, device: Device
) -> None:
    with stalled_put(collector.url, MAX_MB * 2**20, b"not a bundle", signer=device) as sock:
        status, headers, body = answer(sock)
        assert (status, body["reason"]) == (400, "malformed")
        assert headers["connection"] == "close"


def test_a_header_length_beyond_the_format_is_refused_from_twelve_bytes(
    collector: RunningCollector, device: Device
) -> None:
    prefix = MAGIC + (MAX_HEADER + 1).to_bytes(4, "big")
    with stalled_put(collector.url, MAX_MB * 2**20, prefix, signer=device) as sock:
        status, _, body = answer(sock)
    assert (status, body["reason"]) == (400, "header-too-large")


def test_a_header_nested_too_deeply_is_a_reasoned_refusal_not_a_crash(
    collector: RunningCollector, device: Device
) -> None:
    nested = b"[" * 30_000 + b"]" * 30_000
    prefix = MAGIC + len(nested).to_bytes(4, "big") + nested
    with stalled_put(collector.url, len(prefix) + 1000, prefix, signer=device) as sock:
        status, _, body = answer(sock)
    assert (status, body["reason"]) == (400, "malformed")
    assert "nested too deeply" in str(body["error"])
    assert "Traceback" not in collector.stderr()


def test_an_enrolled_header_with_a_stalled_body_is_cut_off_at_the_body_timeout(
    collector: RunningCollector, device: Device
) -> None:
    with stalled_put(collector.url, MAX_MB * 2**20, header_of(device), signer=device) as sock:
        status, headers, body = answer(sock)
        assert (status, body["reason"]) == (408, "body-timeout")
        assert headers["connection"] == "close"
        assert sock.recv(1) == b""
    # Its body is no longer held: the device uploads again.
    assert device.upload(collector.url)[0].status_code == 201


def test_a_device_sends_one_body_at_a_time(collector: RunningCollector, device: Device) -> None:
    # Which of the two the collector takes first is up to its scheduling (on a
    # loaded machine the second may be admitted first): one body is held until
    # it times out, the other is turned away at once.
    head = header_of(device)
    with (
        stalled_put(collector.url, MAX_MB * 2**20, head, signer=device) as first,
        stalled_put(collector.url, MAX_MB * 2**20, head, signer=device) as second,
    ):
        answers = [answer(second), answer(first)]
    refused = [a for a in answers if a[0] == 429]
    assert len(refused) == 1
    _, headers, body = refused[0]
    assert body["reason"] == "upload-in-progress"
    assert int(headers["retry-after"]) >= 1
    assert sorted(a[0] for a in answers) == [408, 429]


def test_bodies_beyond_the_memory_budget_are_turned_away_with_retry_after(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    devices = [Device(org_keys.bundle_public) for _ in range(3)]
    for dev, token in zip(devices, collector.tokens(3), strict=True):
        assert dev.enroll(collector.url, token).status_code == 201
    held = [stalled_put(collector.url, MAX_MB * 2**20, header_of(d), signer=d) for d in devices[:2]]
    try:
        with stalled_put(
            collector.url, MAX_MB * 2**20, header_of(devices[2]), signer=devices[2]
        ) as third:
            status, headers, body = answer(third)
        assert (status, body["reason"]) == (503, "busy")
        assert int(headers["retry-after"]) >= 1
    finally:
        for sock in held:
            assert answer(sock)[0] == 408
            sock.close()


def test_a_hundred_stalled_uploads_keep_the_collector_within_its_memory_bound() -> None:
    """The benchmark's attack, small: 100 clients each send 3.5 of a declared 3.9 MiB and stop."""
    done = subprocess.run(
        [
            sys.executable,
            str(FLOOD),
            "--clients",
            "100",
            "--body-mb",
            "3.5",
            "--declared-mb",
            "3.9",
            "--max-bundle-mb",
            "4",
            "--body-memory-mb",
            "8",
            "--body-timeout",
            "2",
            "--header-timeout",
            "1",
            "--tricklers",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Held in full, the bodies would take 350 MiB; the bound is 8 MiB of bodies + 48 MiB.
    assert report["rss_peak_mb"] <= report["bound_mb"], report
    assert set(report["answers"]) <= {"400", "401", "408", "429", "503", "closed"}, report
    assert report["answers"].get("401", 0) >= 1, report  # copied headers, unsigned
    assert report["answers"].get("408", 0) >= 1, report
    assert report["upload_after"] == 201, report


# -- enrolment rates ------------------------------------------------------------------------


def test_enrolment_attempts_are_limited_per_client_address(tmp_path: Path) -> None:
    with collector_running(tmp_path / "data", "--enroll-rate", "3/h") as running:
        for _ in range(3):
            assert enrol_from(running.url, "127.0.0.1", "guess")[0] == 401
        status, headers, reason = enrol_from(running.url, "127.0.0.1", running.tokens()[0])
        assert (status, reason) == (429, "rate-limited")
        assert int(headers["retry-after"]) > 60
        # Another address is not held back by this one's guesses.
        assert enrol_from(running.url, "127.0.0.2", running.tokens()[0])[0] == 201


def test_enrolment_attempts_are_limited_overall(tmp_path: Path) -> None:
    with collector_running(
        tmp_path / "data", "--enroll-rate", "10/m", "--enroll-rate-total", "4/h"
    ) as running:
        answers = [enrol_from(running.url, f"127.0.0.{i}", "guess")[0] for i in range(1, 6)]
    assert answers == [401, 401, 401, 401, 429]


def test_a_request_head_beyond_16_kib_is_refused_without_being_held(
    collector: RunningCollector,
) -> None:
    parts = urlsplit(collector.url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=20) as sock:
        head = b"GET /v1/policy HTTP/1.1\r\nHost: c\r\nX-Padding: " + b"a" * 2**20
        try:
            sock.sendall(head)
            answered = sock.recv(64)
        except ConnectionResetError:
            answered = b"reset"
    assert answered.startswith((b"HTTP/1.1 400", b"reset")), answered


def test_an_enrolment_nested_too_deeply_is_malformed_not_a_crash(
    collector: RunningCollector,
) -> None:
    parts = urlsplit(collector.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    try:
        conn.request("POST", "/v1/enroll", b"[" * 8000 + b"]" * 8000)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())["reason"]) == (400, "malformed")
    finally:
        conn.close()
