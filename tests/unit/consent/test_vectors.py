from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS, canonical, make_record, record_hash

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "ledger" / "v1.json").read_text()
)


def test_ledger_records_match_their_known_answers() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["device_seed"]))
    prev = GENESIS
    for seq, expected in enumerate(VECTOR["records"], 1):
        record = make_record(
            key,
            seq=seq,
            prev=prev,
            kind=expected["kind"],
            fields=expected["fields"],
            now=datetime.fromisoformat(expected["time"]),
        )
        assert canonical(record).decode() == expected["canonical"]
        assert record_hash(record) == expected["hash"]
        prev = expected["hash"]
