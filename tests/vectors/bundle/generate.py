"""Write the bundle test vectors in this directory.

Run by hand when the bundle format deliberately changes (a new "v"):
    .venv/bin/python tests/vectors/bundle/generate.py
It writes the samples of the current version, `v2-*.ctb` and v2.json. The v1
samples (the other .ctb files and v1.json) were written by the v1 version of
this script and are kept as they are: readers still accept v1 headers.
HPKE sealing is randomised, so the .ctb files are fixed samples rather than
re-derivable bytes: tests/upload/test_bundle_vectors.py checks that each
positive one verifies and opens to exactly the content in its v*.json with the
test keys given there, and that each negative one fails with its reason.
These files are what another implementation of a reader tests against.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.events import Event, Kind
from cleartrace.formats import b64url
from cleartrace.suites import OrgPublicKey
from cleartrace.upload.bundle import build_bundle
from cleartrace.upload.events_arrow import decode_events, encode_events, encode_table, events_table
from cleartrace.upload.retiming import retime

HERE = Path(__file__).parent
# Test keys only: published with the vectors, never used for anything else.
DEVICE_SEED = bytes(range(0x20, 0x40))
X25519_SEED = bytes(range(0x40, 0x60))
MLKEM_SEED = bytes(range(0x80, 0xC0))
OTHER_X25519_SEED = bytes(range(0xA0, 0xC0))
WALL_MINUS_MONO = 1_764_662_400_000_000_000  # 2025-12-02T08:00:00Z minus a monotonic origin

EVENTS = [
    Event(1_000_000, Kind.FOCUS, app="org.gnome.TextEditor", title="draft.txt"),
    Event(2_000_000, Kind.KEY_DOWN, 0x68),
    Event(2_050_000, Kind.KEY_UP, 0x68),
    Event(3_000_000, Kind.KEY_DOWN, 0x01000000 + 0x20AC),
    Event(3_040_000, Kind.KEY_UP, 0x01000000 + 0x20AC),
    Event(4_000_000, Kind.MOVE, 640, 400),
    Event(5_000_000, Kind.BUTTON_DOWN, 640, 400, 1),
    Event(5_080_000, Kind.BUTTON_UP, 640, 400, 1),
    Event(6_000_000, Kind.SCROLL, 640, 400, 0, -1),
    Event(7_000_000, Kind.EXCLUDED_START),
    Event(8_000_000, Kind.EXCLUDED_END),
]
LEDGER = [
    {"v": 1, "seq": 1, "kind": "consent.given", "note": "records are opaque to the bundle"},
    {"v": 1, "seq": 2, "kind": "session.started"},
]


def _header(
    session: str | None, events: int, counts: dict[str, int], timing: str
) -> dict[str, Any]:
    return {
        "timing": timing,
        "subject": "5b" * 16,
        "session": session,
        "interval": None
        if session is None
        else {"start": "2025-12-02T08:00:00.000Z", "end": "2025-12-02T08:00:00.008Z"},
        "created": "2025-12-02T09:00:00.000Z",
        "ledger": {
            "base": {"seq": 0, "hash": GENESIS},
            "head": {"seq": 2, "hash": "9e" * 32},
        },
        "policy": {"id": "vector-policy", "version": 1, "sha256": "3c" * 32},
        "counts": counts,
        "events": events,
        "redactions": []
        if session is None
        else [
            {
                "method": "span",
                "events": 4,
                "categories": ["keys"],
                "interval": {
                    "start": "2025-12-02T08:00:00.002Z",
                    "end": "2025-12-02T08:00:00.003Z",
                },
            }
        ],
    }


def main() -> None:
    device = Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    x_key = x25519.X25519PrivateKey.from_private_bytes(X25519_SEED)
    m_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(MLKEM_SEED)
    hybrid = OrgPublicKey.from_keys(x_key.public_key(), m_key.public_key())
    plain = OrgPublicKey.from_keys(x_key.public_key(), None)
    other = OrgPublicKey.from_keys(
        x25519.X25519PrivateKey.from_private_bytes(OTHER_X25519_SEED).public_key(), None
    )
    counts = {"app_focus": 1, "clicks": 2, "keys": 4, "mouse_move": 1, "scroll": 1}
    raw_ipc = encode_events(EVENTS, WALL_MINUS_MONO)
    # As a device without typing_rhythm consent sends them (upload/retiming.py).
    even_ipc = encode_table(retime(events_table(EVENTS, WALL_MINUS_MONO)))
    session = "a1" * 16

    def make(key: OrgPublicKey, timing: str, *, ledger_only: bool = False) -> bytes:
        return build_bundle(
            header_fields=_header(None, 0, {}, timing)
            if ledger_only
            else _header(session, len(EVENTS), counts, timing),
            ledger=LEDGER,
            events_ipc=b"" if ledger_only else (raw_ipc if timing == "raw" else even_ipc),
            org_key=key,
            device_key=device,
        )

    files: dict[str, bytes] = {
        "v2-hybrid.ctb": make(hybrid, "even"),
        "v2-x25519.ctb": make(plain, "raw"),
        "v2-ledger-only.ctb": make(hybrid, "even", ledger_only=True),
        "v2-wrong-org-key.ctb": make(other, "even"),
    }
    good = files["v2-hybrid.ctb"]
    flipped = bytearray(good)
    flipped[-10] ^= 0x01
    files["v2-bad-signature.ctb"] = bytes(flipped)
    body = bytearray(good)
    body[len(body) // 2] ^= 0x01
    files["v2-bad-body.ctb"] = bytes(body)
    files["v2-truncated.ctb"] = good[: len(good) - 100]
    files["v2-foreign-signer.ctb"] = good[:-64] + Ed25519PrivateKey.generate().sign(good[:-64])
    for name, data in files.items():
        (HERE / name).write_bytes(data)

    raw_rows = decode_events(raw_ipc).to_pylist()
    even_rows = decode_events(even_ipc).to_pylist()
    vectors = {
        "format": "cleartrace-bundle v2",
        "keys": {
            "device_ed25519_private": b64url(DEVICE_SEED),
            "org_x25519_private": b64url(X25519_SEED),
            "org_mlkem768_seed": b64url(MLKEM_SEED),
            "org_bundle_public_hybrid": hybrid.as_json(),
            "org_bundle_public_x25519": plain.as_json(),
        },
        "positive": [
            {
                "file": "v2-hybrid.ctb",
                "suite": "mlkem768-x25519",
                "timing": "even",
                "events": even_rows,
                "ledger": LEDGER,
            },
            {
                "file": "v2-x25519.ctb",
                "suite": "x25519",
                "timing": "raw",
                "events": raw_rows,
                "ledger": LEDGER,
            },
            {
                "file": "v2-ledger-only.ctb",
                "suite": "mlkem768-x25519",
                "timing": "even",
                "events": [],
                "ledger": LEDGER,
            },
        ],
        "negative": [
            {"file": "v2-bad-signature.ctb", "reason": "bad-signature"},
            {"file": "v2-bad-body.ctb", "reason": "bad-signature"},
            {"file": "v2-foreign-signer.ctb", "reason": "bad-signature"},
            {"file": "v2-truncated.ctb", "reason": "bad-signature"},
            {"file": "v2-wrong-org-key.ctb", "reason": "wrong-org-key"},
        ],
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    (HERE / "v2.json").write_text(json.dumps(vectors, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
