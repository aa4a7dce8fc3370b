"""The collector's HTTP protocol against a real `cleartrace org serve` on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.org.keys import OrgKeys
from cleartrace.org.policy_signing import init_policy
from cleartrace.org.registry import Registry
from cleartrace.upload.bundle_header import header_end
from tests.support.cli import ct
from tests.support.notice import EXAMPLE_NOTICE
from tests.support.org_device import Device, enrolment
from tests.support.org_process import (
    RunningCollector,
    collector_running,
    leftovers,
    start_collector,
)

MAX_MB = 1


@pytest.fixture(scope="module")
def collector(
    tmp_path_factory: pytest.TempPathFactory, collector_state: str | None
) -> Iterator[RunningCollector]:
    """One collector per state backend (SQLite, PostgreSQL): 1 MiB bundles at most,
    5 uploads a minute per device."""
    data = tmp_path_factory.mktemp("collector") / "data"
    with collector_running(
        data, "--max-bundle-mb", str(MAX_MB), "--rate", "5/m", state=collector_state
    ) as running:
        yield running


@pytest.fixture
def device(collector: RunningCollector, org_keys: OrgKeys) -> Device:
    """A freshly enrolled device."""
    dev = Device(org_keys.bundle_public)
    assert dev.enroll(collector.url, collector.tokens()[0]).status_code == 201
    return dev


def stored(collector: RunningCollector, name: str) -> bool:
    return (collector.data / "bundles" / f"{name}.ctb").exists()


# -- enrolment -------------------------------------------------------------------------


def test_a_token_enrols_one_device_once(collector: RunningCollector, org_keys: OrgKeys) -> None:
    token = collector.tokens()[0]
    first = Device(org_keys.bundle_public)
    r = first.enroll(collector.url, token)
    assert r.status_code == 201
    assert r.json()["device"] == first.device
    assert len(r.json()["subject"]) == 32

    r = Device(org_keys.bundle_public).enroll(collector.url, token)
    assert r.status_code == 401
    assert r.json()["reason"] == "bad-token"
    assert token not in r.text


def test_the_same_key_enrolling_again_keeps_its_subject(
    collector: RunningCollector, device: Device
) -> None:
    subject = device.subject
    assert device.enroll(collector.url, collector.tokens()[0]).json()["subject"] == subject


def test_an_unknown_token_is_refused(collector: RunningCollector, org_keys: OrgKeys) -> None:
    r = Device(org_keys.bundle_public).enroll(collector.url, "not-a-token-anyone-issued")
    assert (r.status_code, r.json()["reason"]) == (401, "bad-token")


def test_an_enrolment_signed_by_another_key_is_refused_and_keeps_the_token(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    token = collector.tokens()[0]
    body = enrolment(Ed25519PrivateKey.generate(), token, None)
    body["device_public_key"] = enrolment(Ed25519PrivateKey.generate(), token, None)[
        "device_public_key"
    ]
    r = requests.post(f"{collector.url}/v1/enroll", json=body, timeout=10)
    assert (r.status_code, r.json()["reason"]) == (401, "bad-signature")
    assert Device(org_keys.bundle_public).enroll(collector.url, token).status_code == 201


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"token": "x"}', json.dumps({"token": 1}).encode()],
)
def test_a_malformed_enrolment_is_a_bad_request(collector: RunningCollector, body: bytes) -> None:
    r = requests.post(f"{collector.url}/v1/enroll", data=body, timeout=10)
    assert (r.status_code, r.json()["reason"]) == (400, "malformed")


def test_a_new_device_has_the_empty_head_and_an_unknown_one_none(
    collector: RunningCollector, device: Device, org_keys: OrgKeys
) -> None:
    r = requests.get(f"{collector.url}/v1/devices/{device.hex}/head", timeout=10)
    assert r.json() == {"seq": 0, "hash": GENESIS}
    stranger = Device(org_keys.bundle_public)
    r = requests.get(f"{collector.url}/v1/devices/{stranger.hex}/head", timeout=10)
    assert (r.status_code, r.json()["reason"]) == (404, "not-enrolled")


def test_without_a_policy_there_is_none_to_fetch(collector: RunningCollector) -> None:
    r = requests.get(f"{collector.url}/v1/policy", timeout=10)
    assert (r.status_code, r.json()["reason"]) == (404, "no-policy")


def test_unknown_routes_and_methods_answer_json(collector: RunningCollector) -> None:
    r = requests.get(f"{collector.url}/v2/anything", timeout=10)
    assert (r.status_code, r.json()["reason"]) == (404, "not-found")
    r = requests.delete(f"{collector.url}/v1/bundles/{'0' * 64}", timeout=10)
    assert (r.status_code, r.json()["reason"]) == (405, "method-not-allowed")


# -- bundles ---------------------------------------------------------------------------


def test_a_bundle_is_stored_once_and_a_replay_is_acknowledged(
    collector: RunningCollector, device: Device
) -> None:
    r, name, raw = device.upload(collector.url)
    assert r.status_code == 201
    head = {"seq": device.witnessed[0], "hash": device.witnessed[1]}
    assert r.json() == {"bundle": name, "head": head, "stored": True}
    assert (collector.data / "bundles" / f"{name}.ctb").read_bytes() == raw
    head_file = json.loads((collector.data / "heads" / f"{device.hex}.json").read_text())
    assert head_file["device"] == device.device
    assert (head_file["seq"], head_file["hash"], head_file["bundle"]) == (*device.witnessed, name)

    again = device.put(collector.url, name, raw)
    assert again.status_code == 200
    assert again.json() == {"bundle": name, "head": head, "stored": False}
    got = requests.get(f"{collector.url}/v1/devices/{device.hex}/head", timeout=10)
    assert got.json() == head


def test_a_flipped_byte_fails_the_hash_and_then_the_signature(
    collector: RunningCollector, device: Device
) -> None:
    name, raw, _ = device.bundle()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x01  # inside the sealed body: the header still parses
    r = device.put(collector.url, name, bytes(flipped))
    assert (r.status_code, r.json()["reason"]) == (400, "hash-mismatch")

    renamed = hashlib.sha256(flipped).hexdigest()
    r = device.put(collector.url, renamed, bytes(flipped))
    assert (r.status_code, r.json()["reason"]) == (401, "bad-signature")
    assert not stored(collector, name)
    assert not stored(collector, renamed)


def test_a_truncated_bundle_is_malformed(collector: RunningCollector, device: Device) -> None:
    _, raw, _ = device.bundle()
    cut = raw[:40]
    r = device.put(collector.url, hashlib.sha256(cut).hexdigest(), cut)
    assert r.status_code == 400
    assert r.json()["reason"] in ("truncated", "malformed")


def test_a_bundle_from_an_unenrolled_device_is_forbidden(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    stranger = Device(org_keys.bundle_public)
    r, name, _ = stranger.upload(collector.url)
    assert (r.status_code, r.json()["reason"]) == (403, "not-enrolled")
    assert not stored(collector, name)


def test_a_bundle_for_another_subject_is_forbidden(
    collector: RunningCollector, device: Device
) -> None:
    r, name, _ = device.upload(collector.url, subject="f" * 32)
    assert (r.status_code, r.json()["reason"]) == (403, "subject-mismatch")
    assert not stored(collector, name)


def test_a_ledger_that_does_not_extend_the_witnessed_head_is_refused(
    collector: RunningCollector, device: Device
) -> None:
    first, _, _ = device.upload(collector.url)
    assert first.status_code == 201
    witnessed = first.json()["head"]

    # Rewritten: a bundle built again from the start, as if the first never was.
    r, name, _ = device.upload(collector.url, base=(0, GENESIS))
    assert r.status_code == 409
    assert r.json()["reason"] == "head-mismatch"
    assert r.json()["head"] == witnessed
    # Forked: the right sequence number with another hash.
    r, _, _ = device.upload(collector.url, base=(witnessed["seq"], "e" * 64))
    assert (r.status_code, r.json()["head"]) == (409, witnessed)
    assert not stored(collector, name)
    head = requests.get(f"{collector.url}/v1/devices/{device.hex}/head", timeout=10).json()
    assert head == witnessed


def test_a_device_over_its_rate_is_told_when_to_retry(
    collector: RunningCollector, device: Device
) -> None:
    answers = [device.upload(collector.url)[0] for _ in range(6)]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert answers[-1].json()["reason"] == "rate-limited"
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 12


def _put_headers_only(url: str, name: str, length: int) -> tuple[int, dict[str, str]]:
    """Declare `length` bytes and send none: the answer must come before the body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("PUT", f"/v1/bundles/{name}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_an_oversize_bundle_is_refused_by_its_declared_length(
    collector: RunningCollector,
) -> None:
    status, body = _put_headers_only(collector.url, "a" * 64, MAX_MB * 2**20 + 1)
    assert (status, body["reason"]) == (413, "too-large")


def test_an_oversize_bundle_without_a_length_is_cut_off_while_streaming(
    collector: RunningCollector, device: Device
) -> None:
    chunk = b"\0" * 65536
    _, raw, _ = device.bundle()

    def body() -> Iterator[bytes]:
        yield raw[: header_end(raw)]  # an enrolled device's header: admitted, then cut off
        for _ in range(MAX_MB * 16 + 2):
            yield chunk

    r = requests.put(
        f"{collector.url}/v1/bundles/{'b' * 64}",
        data=body(),
        timeout=30,
        headers=device.auth("b" * 64),
    )
    assert (r.status_code, r.json()["reason"]) == (413, "too-large")
    assert not stored(collector, "b" * 64)
    assert leftovers(collector.data) == []


def test_a_bad_name_is_a_bad_request(collector: RunningCollector) -> None:
    r = requests.put(f"{collector.url}/v1/bundles/NOT-A-HASH", data=b"x", timeout=10)
    assert (r.status_code, r.json()["reason"]) == (400, "bad-name")


def test_the_log_tells_what_happened_but_no_token(
    collector: RunningCollector, org_keys: OrgKeys
) -> None:
    tokens = collector.tokens(2)
    dev = Device(org_keys.bundle_public)
    assert dev.enroll(collector.url, tokens[0]).status_code == 201
    assert dev.enroll(collector.url, tokens[0]).status_code == 401
    r, name, _ = dev.upload(collector.url)
    assert r.status_code == 201
    log = collector.stderr()
    assert f"enrolled device {dev.hex[:16]}" in log
    assert "enrolment refused: bad-token" in log
    assert f"accepted bundle {name[:16]}" in log
    assert not any(t in log for t in tokens)
    assert "Traceback" not in log


def test_nothing_is_half_written(collector: RunningCollector) -> None:
    assert leftovers(collector.data) == []


# -- the commands around it -------------------------------------------------------------


def test_org_token_prints_distinct_tokens_and_org_devices_lists_heads(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    data = tmp_path / "data"
    out = ct("org", "token", "--data", str(data), "--count", "3", check=False)
    assert out.returncode == 0, out.stderr
    tokens = out.stdout.split()
    assert len(set(tokens)) == 3
    assert not any(t.encode() in (data / "collector.db").read_bytes() for t in tokens)

    with collector_running(data) as running:
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(running.url, tokens[0]).status_code == 201
        assert dev.upload(running.url)[0].status_code == 201
    listing = ct("org", "devices", "--data", str(data), "--json", check=False)
    assert listing.returncode == 0, listing.stderr
    (entry,) = json.loads(listing.stdout)
    assert entry["device"] == dev.device
    assert entry["subject"] == dev.subject
    assert entry["head"] == {"seq": dev.witnessed[0], "hash": dev.witnessed[1]}
    text = ct("org", "devices", "--data", str(data), check=False)
    assert dev.subject in text.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_collector_cleanly(tmp_path: Path, sig: int) -> None:
    running = start_collector(tmp_path / "data")
    assert running.stop(sig) == 0
    assert "Traceback" not in running.stderr()


def test_a_second_collector_on_the_same_data_is_refused(tmp_path: Path) -> None:
    with collector_running(tmp_path / "data"):
        again = ct("org", "serve", "--data", str(tmp_path / "data"), "--port", "0", check=False)
    assert again.returncode == 2
    assert "another collector is serving" in again.stderr


def test_a_collector_with_a_policy_serves_it_and_enrols_only_with_it(
    tmp_path: Path, org_keys: OrgKeys, org_dir: Path
) -> None:
    signed = init_policy(
        org_dir, "http://127.0.0.1:1", tmp_path / "policy.json", notice=EXAMPLE_NOTICE
    )
    with collector_running(tmp_path / "data", "--policy", str(tmp_path / "policy.json")) as c:
        served = requests.get(f"{c.url}/v1/policy", timeout=10)
        assert served.content == signed.raw
        token = c.tokens()[0]
        r = Device(org_keys.bundle_public).enroll(c.url, token, "9" * 64)
        assert (r.status_code, r.json()["reason"]) == (409, "policy-mismatch")
        assert r.json()["policy_sha256"] == signed.policy.sha256
        r = Device(org_keys.bundle_public).enroll(c.url, token, signed.policy.sha256)
        assert r.status_code == 201


def test_an_unsigned_policy_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text('{"id": "x", "version": 1, "purpose": "y"}')
    out = ct(
        "org", "serve", "--data", str(tmp_path / "d"), "--port", "0", "--policy",
        str(tmp_path / "policy.json"),
        check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "not signed" in out.stderr


def test_head_files_a_crash_left_wrong_are_rewritten_at_start(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    data = tmp_path / "data"
    with collector_running(data) as c:
        first, second = Device(org_keys.bundle_public), Device(org_keys.bundle_public)
        for dev in (first, second):
            assert dev.enroll(c.url, c.tokens()[0]).status_code == 201
            assert dev.upload(c.url)[0].status_code == 201
    heads = data / "heads"
    good = (heads / f"{first.hex}.json").read_bytes()
    (heads / f"{first.hex}.json").write_bytes(b"")  # cut short by a crash
    (heads / f"{second.hex}.json").unlink()  # never reached the disk
    (heads / f".{first.hex}.json.0123.tmp").write_bytes(b"{")
    with collector_running(data):
        pass
    assert (heads / f"{first.hex}.json").read_bytes() == good
    restored = json.loads((heads / f"{second.hex}.json").read_text())
    assert (restored["seq"], restored["hash"]) == second.witnessed
    assert leftovers(data) == []


def test_tokens_never_look_like_command_line_options(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "data")
    tokens = registry.issue_tokens(500)
    registry.close()
    assert all(t.startswith("ct_") and len(t) > 40 for t in tokens)
    assert len(set(tokens)) == 500
