"""Ledger fixtures: a real SQLite store file in the test's private home, real keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.ledger import Ledger
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.db import connect


@pytest.fixture
def device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def open_ledger(
    private_home: Paths, device_key: Ed25519PrivateKey
) -> Iterator[Callable[[], Ledger]]:
    """Open another Ledger (own connection) on the same store file, as a second process would."""
    ensure_private_dirs(private_home)
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        led = Ledger(connect(private_home.db), private_home.db, device_key)
        opened.append(led)
        return led

    yield open_one
    for led in opened:
        led.close()


@pytest.fixture
def ledger(open_ledger: Callable[[], Ledger]) -> Ledger:
    return open_ledger()


@pytest.fixture
def export_of(tmp_path: Path) -> Callable[[Ledger], list[str]]:
    """The ledger exported through Ledger.export and read back as lines."""

    def run(led: Ledger) -> list[str]:
        out = tmp_path / "ledger.jsonl"
        led.export(out)
        return out.read_text(encoding="utf-8").splitlines()

    return run
