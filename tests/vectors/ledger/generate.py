"""Write the ledger known-answer vectors in this directory.

Run once, by hand, when the record format deliberately changes (a new `v`):
    .venv/bin/python tests/vectors/ledger/generate.py
tests/consent/test_vectors.py re-derives the positive vectors with the
library and checks the bad-*.jsonl files fail at the seq given in negative.json.
The files are what other implementations (an officer's own verifier) test against.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cleartrace.consent.exclusions import app_tag
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.formats import b64url, canonical
from cleartrace.store.db import connect

HERE = Path(__file__).parent
DEVICE_SEED = bytes(range(0x20, 0x40))
INTRUDER_SEED = bytes(range(0x60, 0x80))
#: The device's exclusions key (in production: random, wrapped by the master key).
EXCLUSIONS_KEY = bytes(range(0x80, 0xA0))
APP_NAMES = ["signal-desktop", "microsoft teams - preview", "keepassxc"]

RECORDS: list[dict[str, Any]] = [
    {
        "time": "2026-11-24T09:00:00.000Z",
        "kind": "consent.given",
        "fields": {
            "categories": ["app_focus", "clicks", "keys"],
            "policy": {
                "id": "example-policy",
                "version": 3,
                "sha256": "5f7c3d1e" * 8,
            },
        },
    },
    {
        "time": "2026-11-24T09:00:01.500Z",
        "kind": "recording.paused",
        "fields": {"until": "2026-11-24T09:15:00Z"},
    },
    {
        "time": "2026-11-24T09:30:00.007Z",
        "kind": "session.deleted",
        "fields": {"session": "00112233445566778899aabbccddeeff"},
    },
]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def export_lines(key: Ed25519PrivateKey) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.db"
        ledger = Ledger(connect(db), db, key)
        for r in RECORDS:
            ledger.append(r["kind"], now=_when(r["time"]), **r["fields"])
        lines = ledger.export_lines()
        ledger.close()
    return lines


def _write(name: str, lines: list[str]) -> None:
    (HERE / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def main() -> None:
    key = Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    intruder = Ed25519PrivateKey.from_private_bytes(INTRUDER_SEED)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    vector: dict[str, Any] = {
        "description": (
            "Ledger record format v1 (docs/adr/0002-ledger-records.md). Ed25519 is "
            "deterministic, so unsigned bytes, signatures, canonical bytes and hashes are fixed. "
            "export.jsonl is Ledger.export of these records; bad-*.jsonl with negative.json are "
            "tampered copies and the seq a verifier must report."
        ),
        "device_seed": DEVICE_SEED.hex(),
        "device_public_key": b64url(raw),
        "records": [],
    }
    lines = export_lines(key)
    prev = GENESIS
    for seq, (spec, line) in enumerate(zip(RECORDS, lines[1:], strict=True), 1):
        record = json.loads(line)
        unsigned = {k: v for k, v in record.items() if k != "sig"}
        assert record["prev"] == prev
        vector["records"].append(
            {
                "seq": seq,
                **spec,
                "unsigned": canonical(unsigned).decode(),
                "sig": record["sig"],
                "canonical": line,
                "hash": record_hash(record),
            }
        )
        prev = record_hash(record)
    vector["head"] = f"{len(RECORDS)}:{prev}"
    (HERE / "v1.json").write_text(json.dumps(vector, indent=1) + "\n", encoding="utf-8")
    _write("export.jsonl", lines)

    header, r1, r2, r3 = lines
    rec2, rec3 = json.loads(r2), json.loads(r3)
    modified = dict(rec2, until="2026-11-24T23:59:00Z")
    sig = bytearray(rec3["sig"].encode())
    sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
    flipped = dict(rec3, sig=sig.decode())
    forged = sign_record({k: v for k, v in rec3.items() if k != "sig"}, intruder)
    intruder_lines = export_lines(intruder)
    device = json.loads(header)["device"]
    cases = [
        ("bad-modified-field.jsonl", [header, r1, canonical(modified).decode(), r3], 2, None),
        ("bad-signature.jsonl", [header, r1, r2, canonical(flipped).decode()], 3, None),
        ("bad-deleted-record.jsonl", [header, r1, r3], 2, None),
        ("bad-swapped-records.jsonl", [header, r2, r1, r3], 1, None),
        ("bad-duplicated-record.jsonl", [header, r1, r2, r2, r3], 3, None),
        ("bad-foreign-signer.jsonl", [header, r1, r2, canonical(forged).decode()], 3, None),
        ("bad-foreign-header.jsonl", [intruder_lines[0], r1, r2, r3], 1, None),
        ("bad-truncated-tail.jsonl", [header, r1, r2], 3, vector["head"]),
        ("bad-torn-last-line.jsonl", [header, r1, r2, r3[: len(r3) // 2]], 3, None),
        ("bad-no-header.jsonl", [r1, r2, r3], 0, None),
    ]
    manifest: list[dict[str, Any]] = []
    for name, case_lines, seq, head in cases:
        _write(name, case_lines)
        manifest.append({"file": name, "seq": seq, "head": head, "expect_device": None})
    # Internally consistent, but not this device's ledger: only the expected
    # fingerprint exposes it.
    _write("bad-resigned-ledger.jsonl", intruder_lines)
    manifest.append(
        {"file": "bad-resigned-ledger.jsonl", "seq": 0, "head": None, "expect_device": device}
    )
    # Signed by the device, chain intact, but it approves a session record 3 deleted.
    late = make_record(
        seq=4,
        prev=record_hash(rec3),
        kind="session.approved",
        fields={"session": rec3["session"], "by": "person"},
        now=_when("2026-11-24T09:31:00.000Z"),
    )
    _write("bad-act-after-deletion.jsonl", [*lines, canonical(sign_record(late, key)).decode()])
    manifest.append(
        {"file": "bad-act-after-deletion.jsonl", "seq": 4, "head": None, "expect_device": None}
    )
    (HERE / "negative.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    write_app_tags(key, rec3)


def write_app_tags(key: Ed25519PrivateKey, last: dict[str, Any]) -> None:
    """app-tags.json: tags of application names, and an `app.excluded` record
    that continues export.jsonl (records before app tags still verify)."""
    tags = [{"name": n, "tag": app_tag(EXCLUSIONS_KEY, n)} for n in APP_NAMES]
    unsigned = make_record(
        seq=4,
        prev=record_hash(last),
        kind="app.excluded",
        fields={"app_tag": tags[0]["tag"]},
        now=_when("2026-11-24T09:45:00.000Z"),
    )
    record = sign_record(unsigned, key)
    vector = {
        "description": (
            "Application tags: hex HMAC-SHA256(key, 'cleartrace-app-tag-v1' 0x00 name), the "
            "only way a ledger names an excluded application (kinds app.excluded and "
            "app.included). 'record' is record 4 after export.jsonl."
        ),
        "exclusions_key": EXCLUSIONS_KEY.hex(),
        "tags": tags,
        "record": {
            "time": "2026-11-24T09:45:00.000Z",
            "unsigned": canonical(unsigned).decode(),
            "canonical": canonical(record).decode(),
            "hash": record_hash(record),
        },
    }
    (HERE / "app-tags.json").write_text(json.dumps(vector, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
