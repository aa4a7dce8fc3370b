"""X-ClearTrace-Auth against its known-answer vectors (tests/vectors/upload_auth)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.upload.upload_auth import UploadAuth, sign_upload
from tests.support import VECTORS

VECTORS = VECTORS / "upload_auth" / "v1.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text())
    return loaded


def key(vectors: dict[str, Any]) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vectors["device_seed"]))


def test_the_signature_is_the_known_answer(vectors: dict[str, Any]) -> None:
    device = key(vectors)
    assert sign_upload(device, "PUT", vectors["name"], vectors["t"]) == vectors["header"]
    auth = UploadAuth.parse(vectors["header"])
    assert auth.when == vectors["t"]
    public = device.public_key()
    public.verify(auth.signature, vectors["signed"].encode())
    assert auth.signed_by(public.public_bytes_raw(), "PUT", vectors["name"])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_signature_for_anything_else_is_refused(vectors: dict[str, Any], index: int) -> None:
    case = vectors["negative"][index]
    public = key(vectors).public_key().public_bytes_raw()
    assert not UploadAuth.parse(case["header"]).signed_by(public, "PUT", case["name"])


def test_another_method_or_key_is_refused(vectors: dict[str, Any]) -> None:
    auth = UploadAuth.parse(vectors["header"])
    assert not auth.signed_by(key(vectors).public_key().public_bytes_raw(), "POST", vectors["name"])
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert not auth.signed_by(other, "PUT", vectors["name"])


@pytest.mark.parametrize(
    "value",
    [None, "", "t=1,sig=x", "device=ab,t=1,sig=" + "A" * 86, "device=" + "a" * 64 + ",t=-1,sig=x"],
)
def test_a_malformed_value_is_refused(value: str | None) -> None:
    with pytest.raises(ValueError, match="not an upload signature"):
        UploadAuth.parse(value)
