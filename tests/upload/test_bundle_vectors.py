"""Known-answer bundles in tests/vectors/bundle/ (written by generate.py there)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from cleartrace.errors import BundleError
from cleartrace.formats import unb64url
from cleartrace.suites import HYBRID, OrgPublicKey
from cleartrace.upload.bundle import open_bundle, parse_bundle, verify_signature
from cleartrace.upload.bundle_header import timing_of
from tests.support import VECTORS

VECTORS = VECTORS / "bundle"
#: v2 samples (written by generate.py) and the v1 samples kept from before:
#: readers still accept v1 headers, whose events carry raw timing.
SPECS = {v: json.loads((VECTORS / f"{v}.json").read_text()) for v in ("v1", "v2")}
SPEC = SPECS["v2"]


class VectorKeys:
    """The published test org key, in the shape open_bundle takes."""

    def __init__(self, suite: str) -> None:
        keys = SPEC["keys"]
        x_key = x25519.X25519PrivateKey.from_private_bytes(unb64url(keys["org_x25519_private"]))
        if suite == HYBRID:
            m_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(unb64url(keys["org_mlkem768_seed"]))
            self.bundle_private: Any = hpke.MLKEM768X25519PrivateKey(m_key, x_key)
            self.bundle_public = OrgPublicKey.from_json(keys["org_bundle_public_hybrid"])
        else:
            self.bundle_private = x_key
            self.bundle_public = OrgPublicKey.from_json(keys["org_bundle_public_x25519"])


POSITIVE = [(v, c) for v, spec in SPECS.items() for c in spec["positive"]]
NEGATIVE = [(v, c) for v, spec in SPECS.items() for c in spec["negative"]]


def _id(case: tuple[str, dict[str, Any]]) -> str:
    return case[1]["file"]


@pytest.mark.parametrize("version", SPECS)
def test_the_files_are_the_ones_described(version: str) -> None:
    for name, digest in SPECS[version]["sha256"].items():
        assert hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("case", POSITIVE, ids=_id)
def test_positive_vectors_verify_and_open(case: tuple[str, dict[str, Any]]) -> None:
    version, expected = case
    raw = (VECTORS / expected["file"]).read_bytes()
    bundle = parse_bundle(raw)
    verify_signature(bundle)
    assert bundle.name == SPECS[version]["sha256"][expected["file"]]
    assert bundle.header["suite"] == expected["suite"]
    # A v1 header has no "timing": its events carry the timing as captured.
    assert timing_of(bundle.header) == expected.get("timing", "raw")
    body = open_bundle(bundle, VectorKeys(expected["suite"]))
    assert body.ledger == expected["ledger"]
    assert body.events.to_pylist() == expected["events"]


def test_the_v2_samples_say_their_timing() -> None:
    assert {c["timing"] for c in SPEC["positive"]} == {"raw", "even"}


@pytest.mark.parametrize("case", NEGATIVE, ids=_id)
def test_negative_vectors_fail_with_their_reason(case: tuple[str, dict[str, Any]]) -> None:
    raw = (VECTORS / case[1]["file"]).read_bytes()

    def read() -> None:
        bundle = parse_bundle(raw)
        verify_signature(bundle)
        open_bundle(bundle, VectorKeys(bundle.header["suite"]))

    with pytest.raises(BundleError) as caught:
        read()
    assert caught.value.reason == case[1]["reason"]
