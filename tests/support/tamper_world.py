"""A collector's store to tamper with: built once by a real collector on
127.0.0.1 and two real device homes, then copied per test (tests/org/test_audit_tamper.py)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.orgkit import (
    Org,
    approve,
    enrolled,
    make_org,
    org_audit,
    record_session,
)

__all__ = ["STORE", "Built", "Case", "build", "copy_dataset", "ingest"]

_NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)
#: What the collector's store is: the bundles and the signed head files.
STORE = ("bundles", "heads")


@dataclass
class Built:
    """The shared world; nothing in it is changed by a test (each works on copies)."""

    org: Org
    root: Path
    ann: str
    bob: str
    #: Ann's bundles in upload order: session, session, the withdrawal of `keys`.
    names: list[str]
    ann_key: Ed25519PrivateKey
    #: bundles/ and heads/ as they were after Ann's first upload (Bob's one was before).
    early: Path
    #: The collector's data directory before anything was uploaded.
    empty: Path
    #: Ingested after everything; and before Ann's withdrawal (its `keys` rows still in).
    dataset: Path
    dataset_before: Path


def _upload(home: Home) -> list[str]:
    return Uploader(home.paths, home.keys, retry=_NO_WAIT).run().uploaded


def ingest(org: Org, out: Path, data: Path | None = None) -> None:
    """`org ingest` of the store in `data` (default: the collector's) into `out`."""
    data = org.collector.data if data is None else data
    ct(
        "org", "ingest", "--from", str(data), "--keys", str(org.keys_dir),
        "--out", str(out), "--witness-key", str(data / "witness.pub"), "--quiet",
    )  # fmt: skip


def copy_dataset(source: Path, to: Path) -> Path:
    shutil.copytree(source, to)
    ledger = source.with_name(source.name + ".org-ledger.jsonl")
    if ledger.exists():
        shutil.copy2(ledger, to.with_name(to.name + ".org-ledger.jsonl"))
    return to


@dataclass
class Case:
    """One copy of the world: a collector data directory and a dataset."""

    built: Built
    data: Path
    dataset: Path
    out: Path

    def bundle(self, name: str) -> Path:
        return self.data / "bundles" / f"{name}.ctb"

    def head(self, device: str) -> Path:
        return self.data / "heads" / f"{device.removeprefix('sha256:')}.json"

    def audit(self, *extra: str, data: Path | None = None, dataset: bool = True) -> Any:
        given = ("--dataset", str(self.dataset)) if dataset else ()
        return org_audit(self.built.org, self.out, *given, *extra, data=data or self.data)

    def coverage(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads((self.out / "coverage.json").read_text())
        return found

    def report_text(self) -> str:
        """index.html as a reader sees it: tags out, entities in, whitespace folded."""
        html = (self.out / "index.html").read_text()
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", html, flags=re.S))
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        return re.sub(r"\s+", " ", text.replace("&amp;", "&"))


def build(root: Path) -> Iterator[Built]:
    """Build the world under `root`; yields it with the collector stopped."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARTRACE_KEYSTORE", "file")
        mp.delenv("CLEARTRACE_HOME", raising=False)
        org = make_org(root / "org")
        org.collector.start()  # creates its data directory, keys and database
        org.collector.stop()  # copied at rest: SQLite's files are not copied mid-write
        data, empty = org.collector.data, root / "empty-data"
        shutil.copytree(data, empty)
        org.collector.start()
        try:
            homes = {}
            for name in ("bob", "ann"):
                paths = Paths(root / name, root / f"{name}-run")
                paths.runtime.mkdir(mode=0o700)
                homes[name] = home = enrolled(org, paths)
                give(home.ledger, frozenset(Category), active_policy(paths))
            ann, bob = homes["ann"], homes["bob"]
            approve(bob, record_session(bob, 10))
            _upload(bob)
            approve(ann, record_session(ann, 10))
            names = _upload(ann)
            early = root / "early"
            for folder in STORE:
                shutil.copytree(data / folder, early / folder)
            approve(ann, record_session(ann, 10))
            names += _upload(ann)
            ingest(org, root / "dataset-before")
            withdraw(ann.ledger, frozenset({Category.KEYS}), active_policy(ann.paths))
            names += _upload(ann)
            assert len(names) == 3
            built = Built(
                org, root, ann.ledger.device, bob.ledger.device, names, ann.keys.device,
                early, empty, root / "dataset", root / "dataset-before",
            )  # fmt: skip
        finally:
            org.collector.stop()  # nothing rewrites a head file behind the tests' back
        ingest(org, built.dataset)
        for home in homes.values():
            home.close()
        yield built
