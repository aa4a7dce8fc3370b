"""Known-answer vectors of the witnessed head file (tests/vectors/heads/v2.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import DeviceRefused
from cleartrace.org.heads import AcceptedHeads, HeadChecks
from cleartrace.org.witness import sign_head
from tests.support import VECTORS

VECTORS = json.loads((VECTORS / "heads" / "v2.json").read_text(encoding="utf-8"))
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["witness_seed"]))


def checks(tmp_path: Path) -> HeadChecks:
    return HeadChecks(AcceptedHeads(tmp_path), witness=KEY.public_key())


@pytest.mark.parametrize("case", VECTORS["positive"], ids=lambda c: c["name"])
def test_signing_gives_the_vector_bytes_and_ingest_reads_them(
    case: dict[str, Any], tmp_path: Path
) -> None:
    assert sign_head(case["doc"], KEY).decode() == case["file"]
    head = checks(tmp_path).witnessed(VECTORS["device"], json.loads(case["file"]))
    assert head is not None
    assert (head.device, head.seq, head.hash) == (
        case["doc"]["device"],
        case["doc"]["seq"],
        case["doc"]["hash"],
    )
    assert head.counter == case["doc"].get("counter")
    assert head.trusted


@pytest.mark.parametrize("case", VECTORS["negative"], ids=lambda c: c["name"])
def test_ingest_refuses_each_negative_vector_with_its_reason(
    case: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(DeviceRefused) as refused:
        checks(tmp_path).witnessed(VECTORS["device"], json.loads(case["file"]))
    assert refused.value.reason == case["reason"]
