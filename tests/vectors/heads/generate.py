"""Write the witnessed-head test vectors in this directory (v2.json).

Run by hand when the head file format deliberately changes (a new "v"):
    .venv/bin/python tests/vectors/heads/generate.py
Ed25519 is deterministic, so every file here is exact bytes:
tests/org/test_head_vectors.py signs each positive document again and
compares, and checks that ingest refuses each negative one with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.formats import b64url, canonical, key_fingerprint
from cleartrace.org.witness import sign_head

HERE = Path(__file__).parent
# A test key only: published with the vectors, never used for anything else.
WITNESS_SEED = bytes(range(0x60, 0x80))
DEVICE = "sha256:" + "c3" * 32
OTHER_DEVICE = "sha256:" + "d4" * 32
HEAD: dict[str, Any] = {
    "v": 2,
    "device": DEVICE,
    "seq": 7,
    "hash": "9f" * 32,
    "bundle": "ab" * 32,
    "time": "2026-12-03T09:15:00.000Z",
    "counter": 41,
}


def main() -> None:
    key = Ed25519PrivateKey.from_private_bytes(WITNESS_SEED)
    public = key.public_key().public_bytes_raw()
    v1 = {k: v for k, v in HEAD.items() if k not in ("v", "counter")}
    signed = json.loads(sign_head(HEAD, key))
    negative = [
        ("counter-changed", canonical({**signed, "counter": 42}), "head-forged"),
        ("unsigned", canonical(HEAD), "head-forged"),
        ("other-device", sign_head({**HEAD, "device": OTHER_DEVICE}, key), "head-foreign"),
        ("future-version", sign_head({**HEAD, "v": 3}, key), "head-unreadable"),
        (
            "no-counter",
            sign_head({k: v for k, v in HEAD.items() if k != "counter"}, key),
            "head-unreadable",
        ),
    ]
    doc = {
        "about": "witnessed head files (docs/bundle-format.md, 'Signed head files')",
        "witness_seed": WITNESS_SEED.hex(),
        "witness_public": b64url(public),
        "witness_fingerprint": key_fingerprint(public),
        "device": DEVICE,
        "positive": [
            {"name": "v2", "doc": HEAD, "file": sign_head(HEAD, key).decode()},
            {"name": "v1", "doc": v1, "file": sign_head(v1, key).decode()},
        ],
        "negative": [
            {"name": name, "file": raw.decode(), "reason": reason} for name, raw, reason in negative
        ],
    }
    (HERE / "v2.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
