from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.ledger import Ledger
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.db import connect


@pytest.fixture
def device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def ledger(private_home: Paths, device_key: Ed25519PrivateKey) -> Iterator[Ledger]:
    ensure_private_dirs(private_home)
    led = Ledger(connect(private_home.db), private_home.db, device_key)
    yield led
    led.close()
