"""The bundle format: sealed to the org key, bound to its header, signed by the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.errors import (
    BundleInvalid,
    BundleNotForThisKey,
    BundleSignatureInvalid,
    KeyStorageError,
    UsageError,
)
from cleartrace.events import Event, Kind
from cleartrace.org.keys import OrgKeys, generate, load_private
from cleartrace.suites import HYBRID, X25519, OrgPublicKey
from cleartrace.upload.bundle import build_bundle, open_bundle, parse_bundle, verify_signature
from cleartrace.upload.bundle_header import timing_of
from cleartrace.upload.events_arrow import encode_events

EVENTS = [
    Event(1_000, Kind.FOCUS, app="xterm", title="notes"),
    Event(2_000, Kind.KEY_DOWN, 0x68),
    Event(3_000, Kind.KEY_UP, 0x68),
    Event(4_000, Kind.MOVE, 10, 20),
    Event(5_000, Kind.SCROLL, 10, 20, 0, -1),
]
OFFSET = 1_764_000_000_000_000_000


def header(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "subject": "ab" * 16,
        "session": "cd" * 16,
        "interval": {"start": "2026-12-02T10:00:00.000Z", "end": "2026-12-02T11:00:00.000Z"},
        "created": "2026-12-02T12:00:00.000Z",
        "ledger": {"base": {"seq": 0, "hash": GENESIS}, "head": {"seq": 1, "hash": "1" * 64}},
        "policy": {"id": "acme", "version": 1, "sha256": "2" * 64},
        "counts": {"keys": 2, "mouse_move": 1, "scroll": 1, "app_focus": 1},
        "events": len(EVENTS),
        "redactions": [],
        "timing": "even",
    }
    fields.update(over)
    return fields


@pytest.fixture(scope="module", params=[HYBRID, X25519])
def org_keys(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OrgKeys:
    return generate(tmp_path_factory.mktemp("keys") / "org", suite=request.param)


@pytest.fixture(scope="module")
def device() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def make(org_keys: OrgKeys, device: Ed25519PrivateKey, **over: Any) -> bytes:
    return build_bundle(
        header_fields=header(**over),
        ledger=[{"seq": 1, "kind": "consent.given"}],
        events_ipc=encode_events(EVENTS, OFFSET),
        org_key=org_keys.bundle_public,
        device_key=device,
    )


def test_round_trip(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    raw = make(org_keys, device)
    bundle = parse_bundle(raw)
    verify_signature(bundle)
    assert bundle.header["suite"] == org_keys.bundle_public.suite
    assert bundle.header["v"] == 2
    assert timing_of(bundle.header) == "even"
    assert bundle.base == (0, GENESIS)
    assert bundle.head == (1, "1" * 64)
    body = open_bundle(bundle, org_keys)
    assert body.ledger == [{"seq": 1, "kind": "consent.given"}]
    rows = body.events.to_pylist()
    assert [r["t_ns"] - OFFSET for r in rows] == [e.t_ns for e in EVENTS]
    assert rows[0]["app"] == "xterm"
    assert rows[0]["title"] == "notes"
    assert rows[4]["d"] == -1


def test_the_body_is_not_in_the_clear(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    raw = make(org_keys, device)
    assert b"xterm" not in raw
    assert b"notes" not in raw
    assert b"consent.given" not in raw


def test_sealing_is_randomised(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    assert parse_bundle(make(org_keys, device)).name != parse_bundle(make(org_keys, device)).name


@pytest.mark.parametrize("where", [0, 20, 200, -200, -1])
def test_a_flipped_byte_is_caught(org_keys: OrgKeys, device: Ed25519PrivateKey, where: int) -> None:
    raw = bytearray(make(org_keys, device))
    raw[where] ^= 0x01
    with pytest.raises((BundleInvalid, BundleSignatureInvalid)):
        verify_signature(parse_bundle(bytes(raw)))


def test_truncated(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    raw = make(org_keys, device)
    for cut in (5, 40, len(raw) // 2, len(raw) - 1):
        with pytest.raises((BundleInvalid, BundleSignatureInvalid)):
            verify_signature(parse_bundle(raw[:cut]))


def test_another_signer_does_not_verify(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    raw = make(org_keys, device)
    forged = raw[:-64] + Ed25519PrivateKey.generate().sign(raw[:-64])
    with pytest.raises(BundleSignatureInvalid, match="does not verify"):
        verify_signature(parse_bundle(forged))


def test_another_org_key_cannot_open(
    org_keys: OrgKeys, device: Ed25519PrivateKey, tmp_path: Path
) -> None:
    other = generate(tmp_path / "other", suite=org_keys.bundle_public.suite)
    with pytest.raises(BundleNotForThisKey, match="sealed to organisation key"):
        open_bundle(parse_bundle(make(org_keys, device)), other)


def test_a_header_moved_onto_another_body_does_not_open(
    org_keys: OrgKeys, device: Ed25519PrivateKey
) -> None:
    a, b = (
        parse_bundle(make(org_keys, device)),
        parse_bundle(make(org_keys, device, subject="ef" * 16)),
    )
    # b's header with a's sealed body, re-signed by the same device: the HPKE
    # info no longer matches, so opening fails although the signature is good.
    spliced = b.raw[: 12 + len(b.header_bytes)] + bytes(a._sealed)
    spliced += device.sign(spliced)
    bundle = parse_bundle(spliced)
    verify_signature(bundle)
    with pytest.raises(BundleNotForThisKey, match="does not open"):
        open_bundle(bundle, org_keys)


def test_ledger_only_bundle(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    raw = build_bundle(
        header_fields=header(session=None, interval=None, counts={}, events=0),
        ledger=[{"seq": 1}, {"seq": 2}],
        events_ipc=b"",
        org_key=org_keys.bundle_public,
        device_key=device,
    )
    body = open_bundle(parse_bundle(raw), org_keys)
    assert [r["seq"] for r in body.ledger] == [1, 2]
    assert body.events.num_rows == 0


@pytest.mark.parametrize(
    "over",
    [
        {"subject": "nothex"},
        {"session": "12"},
        {"events": -1},
        {"ledger": {"base": {"seq": 3, "hash": GENESIS}, "head": {"seq": 1, "hash": GENESIS}}},
        {"extra": 1},
        {"timing": "fast"},
        {"timing": None},
    ],
)
def test_malformed_headers_are_refused(
    org_keys: OrgKeys, device: Ed25519PrivateKey, over: dict[str, Any]
) -> None:
    with pytest.raises(BundleInvalid, match="header is malformed"):
        make(org_keys, device, **over)


def test_keys_survive_a_reload(
    org_keys: OrgKeys, device: Ed25519PrivateKey, tmp_path: Path
) -> None:
    keys = generate(tmp_path / "k", suite=org_keys.bundle_public.suite)
    assert oct((tmp_path / "k" / "bundle.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "k" / "sign.key").stat().st_mode & 0o777) == "0o600"
    again = load_private(tmp_path / "k")
    assert again.bundle_public == keys.bundle_public
    raw = build_bundle(
        header_fields=header(),
        ledger=[],
        events_ipc=encode_events(EVENTS, 0),
        org_key=keys.bundle_public,
        device_key=device,
    )
    assert open_bundle(parse_bundle(raw), again).events.num_rows == len(EVENTS)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    generate(tmp_path / "k")
    with pytest.raises(UsageError, match="never overwritten"):
        generate(tmp_path / "k")


def test_a_readable_private_key_is_refused(tmp_path: Path) -> None:
    generate(tmp_path / "k")
    (tmp_path / "k" / "bundle.key").chmod(0o644)
    with pytest.raises(KeyStorageError, match="readable by group or others"):
        load_private(tmp_path / "k")


def test_public_key_json_round_trip_and_fingerprint_check(org_keys: OrgKeys) -> None:
    obj = org_keys.bundle_public.as_json()
    assert OrgPublicKey.from_json(obj) == org_keys.bundle_public
    with pytest.raises(UsageError, match="fingerprint does not match"):
        OrgPublicKey.from_json({**obj, "fingerprint": "sha256:" + "0" * 64})


def test_a_bundle_without_timing_is_refused(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    fields = header()
    del fields["timing"]
    with pytest.raises(BundleInvalid, match="header is malformed"):
        build_bundle(
            header_fields=fields,
            ledger=[],
            events_ipc=encode_events(EVENTS, OFFSET),
            org_key=org_keys.bundle_public,
            device_key=device,
        )


def test_raw_timing_is_said_in_the_header(org_keys: OrgKeys, device: Ed25519PrivateKey) -> None:
    bundle = parse_bundle(make(org_keys, device, timing="raw"))
    assert timing_of(bundle.header) == "raw"
