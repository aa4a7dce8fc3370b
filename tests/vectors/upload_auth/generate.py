"""Writes v1.json: known-answer vectors for X-ClearTrace-Auth (docs/bundle-format.md).

Run from the repository root with PYTHONPATH=src; Ed25519 is deterministic, so
the output is the same every time.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.upload.upload_auth import sign_upload

SEED = bytes(range(0x20, 0x40))
NAME = "5e" * 32
WHEN = 1_764_000_000


def main() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    value = sign_upload(key, "PUT", NAME, WHEN)
    device, when, sig = value.split(",")
    vectors = {
        "about": "upload request signatures (docs/bundle-format.md, 'Upload request signature')",
        "device_seed": SEED.hex(),
        "method": "PUT",
        "name": NAME,
        "t": WHEN,
        "signed": f"cleartrace-upload-v1\nPUT\n{NAME}\n{device[7:]}\n{WHEN}",
        "header": value,
        "negative": [
            {"why": "signed for another bundle", "name": "5f" * 32, "header": value},
            {
                "why": "another time than signed",
                "name": NAME,
                "header": f"{device},t={WHEN + 1},{sig}",
            },
            {
                "why": "another device's fingerprint",
                "name": NAME,
                "header": f"device={'c3' * 32},{when},{sig}",
            },
        ],
    }
    out = Path(__file__).with_name("v1.json")
    out.write_text(json.dumps(vectors, indent=1) + "\n")


if __name__ == "__main__":
    main()
