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
from tests.support import VECTORS

VECTORS = VECTORS / "bundle"
SPEC = json.loads((VECTORS / "v1.json").read_text())


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


def test_the_files_are_the_ones_described() -> None:
    for name, digest in SPEC["sha256"].items():
        assert hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("case", SPEC["positive"], ids=lambda c: c["file"])
def test_positive_vectors_verify_and_open(case: dict[str, Any]) -> None:
    raw = (VECTORS / case["file"]).read_bytes()
    bundle = parse_bundle(raw)
    verify_signature(bundle)
    assert bundle.name == SPEC["sha256"][case["file"]]
    assert bundle.header["suite"] == case["suite"]
    body = open_bundle(bundle, VectorKeys(case["suite"]))
    assert body.ledger == case["ledger"]
    assert body.events.to_pylist() == case["events"]


@pytest.mark.parametrize("case", SPEC["negative"], ids=lambda c: c["file"])
def test_negative_vectors_fail_with_their_reason(case: dict[str, Any]) -> None:
    raw = (VECTORS / case["file"]).read_bytes()

    def read() -> None:
        bundle = parse_bundle(raw)
        verify_signature(bundle)
        open_bundle(bundle, VectorKeys(bundle.header["suite"]))

    with pytest.raises(BundleError) as caught:
        read()
    assert caught.value.reason == case["reason"]
