"""The tampering matrix of `cleartrace org audit`: a store built once by a real
collector on 127.0.0.1 and two real device homes, then, per case, a copy of it
(and of the dataset ingest wrote from it) changed as whoever can write those
directories would. Each tamper must be named in coverage.json and in the
report's text (index.html), with exit 1; bad input gives one clear line,
never a traceback."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.cli import ct
from tests.support.dataset_tamper import inject
from tests.support.ledger_rewrite import rewrite_the_withdrawal
from tests.support.tamper_world import STORE, Built, Case, build, copy_dataset, ingest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    yield from build(tmp_path_factory.mktemp("tamper"))


@pytest.fixture
def case(built: Built, tmp_path: Path) -> Case:
    data = tmp_path / "data"
    shutil.copytree(built.org.collector.data, data)
    dataset = copy_dataset(built.dataset, tmp_path / "dataset")
    return Case(built, data, dataset, tmp_path / "report")


# -- the tampers: each changes the copy and says what the audit must name ---------------


@dataclass(frozen=True)
class Found:
    """What the audit must report: a device's chain status, a rejected bundle's
    reason, or a dataset violation's rule."""

    device: str | None = None  # "ann" or "bob"
    status: str | None = None
    bundle_reason: str | None = None
    rule: str | None = None


def remove_a_middle_bundle(c: Case) -> Found:
    c.bundle(c.built.names[1]).unlink()
    return Found("ann", "ledger-gap")


def remove_the_newest_bundle(c: Case) -> Found:
    c.bundle(c.built.names[-1]).unlink()
    return Found("ann", "ledger-truncated")


def put_back_an_older_signed_head(c: Case) -> Found:
    early = c.built.early / "heads" / c.head(c.built.ann).name
    shutil.copy2(early, c.head(c.built.ann))
    return Found("ann", "head-lowered")


def lower_the_head_without_the_witness_key(c: Case) -> Found:
    head = json.loads(c.head(c.built.ann).read_text())
    c.head(c.built.ann).write_text(json.dumps({**head, "seq": head["seq"] - 1}))
    return Found("ann", "head-forged")


def break_the_heads_signature(c: Case) -> Found:
    head = json.loads(c.head(c.built.ann).read_text())
    sig = head["sig"]
    head["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    c.head(c.built.ann).write_text(json.dumps(head))
    return Found("ann", "head-forged")


def rewrite_a_ledger_segment(c: Case) -> Found:
    """The withdrawal of `keys` turned into one of `scroll`, signed again with the
    device's own key, in a bundle rebuilt and signed again: the witnessed head says no."""
    path = c.bundle(c.built.names[-1])
    rewrite_the_withdrawal(path, c.built.org.keys_dir, c.built.org.keys, c.built.ann_key)
    return Found("ann", "ledger-rewritten")


def change_a_bundles_bytes(c: Case) -> Found:
    path = c.bundle(c.built.names[0])
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    return Found("ann", "ledger-gap", bundle_reason="name-mismatch")


def roll_the_store_back_as_a_whole(c: Case) -> Found:
    """bundles/ and heads/ put back from a copy taken after Ann's first upload;
    the collector's registry (its own database, not the store) is as it was."""
    for folder in STORE:
        shutil.rmtree(c.data / folder)
        shutil.copytree(c.built.early / folder, c.data / folder)
    return Found("ann", "head-rollback")


def remove_a_devices_bundles_and_head(c: Case) -> Found:
    bob = c.built.bob
    ann = set(c.built.names)
    for path in (c.data / "bundles").glob("*.ctb"):
        if path.stem not in ann:
            path.unlink()
    c.head(bob).unlink()
    return Found("bob", "bundles-missing")


def inject_a_row_outside_consent(c: Case) -> Found:
    bob = c.built.bob.removeprefix("sha256:")[:16]
    events = sorted((c.dataset / "events").rglob("part-*.parquet"))
    part = next(p for p in events if bob in str(p))
    inject(part, time=datetime(2020, 1, 1, tzinfo=UTC))
    return Found("bob", rule="outside-consent")


def leave_a_withdrawn_categorys_rows(c: Case) -> Found:
    """The dataset as ingested before Ann withdrew `keys`, never ingested again."""
    shutil.rmtree(c.dataset)
    copy_dataset(c.built.dataset_before, c.dataset)
    return Found("ann", rule="withdrawn")


Tamper = Callable[[Case], Found]
TAMPERS: list[tuple[Tamper, tuple[str, ...]]] = [
    (remove_a_middle_bundle, ()),
    (remove_the_newest_bundle, ()),
    (put_back_an_older_signed_head, ()),
    (lower_the_head_without_the_witness_key, ()),
    (break_the_heads_signature, ()),
    (rewrite_a_ledger_segment, ()),
    (change_a_bundles_bytes, ()),
    (roll_the_store_back_as_a_whole, ("--heads-from", "DATA")),
    (remove_a_devices_bundles_and_head, ("--heads-from", "DATA")),
    (inject_a_row_outside_consent, ()),
    (leave_a_withdrawn_categorys_rows, ()),
]


def test_the_untouched_copy_is_clean(case: Case) -> None:
    done = case.audit("--heads-from", str(case.data))
    assert done.returncode == 0, done.stdout + done.stderr
    report = case.coverage()
    assert report["ok"] is True
    assert {d["chain"]["status"] for d in report["devices"].values()} == {"intact"}
    assert report["proof"]["totals"]["violations"] == 0


@pytest.mark.parametrize(("tamper", "extra"), TAMPERS, ids=[t.__name__ for t, _ in TAMPERS])
def test_each_tamper_is_detected_named_in_the_report_and_exits_1(
    case: Case, tamper: Tamper, extra: tuple[str, ...]
) -> None:
    found = tamper(case)
    done = case.audit(*(str(case.data) if a == "DATA" else a for a in extra))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    report, text = case.coverage(), case.report_text()
    assert report["ok"] is False
    assert found.device is not None
    fp = case.built.ann if found.device == "ann" else case.built.bob
    other = case.built.bob if found.device == "ann" else case.built.ann
    if found.status is not None:
        assert report["devices"][fp]["chain"]["status"] == found.status
        assert report["devices"][other]["chain"]["status"] == "intact"
        assert f"device {fp}: {found.status}" in done.stdout
        row = re.search(re.escape(fp) + r" \S* ?" + re.escape(found.status), text)
        assert row is not None, f"{found.status} of {fp} not in the report's text"
    if found.bundle_reason is not None:
        (rejected,) = [r for r in report["rejected_bundles"] if r["reason"] == found.bundle_reason]
        # Rejected before its device is known: the row names no device.
        assert f"{rejected['bundle']} {found.bundle_reason}" in text
    if found.rule is not None:
        violations = report["proof"]["violations"]
        assert violations
        assert {(v["device"], v["rule"]) for v in violations} == {(fp, found.rule)}
        for v in violations[:3]:
            assert f"{fp} {v['session']} {v['bundle']}" in text
            assert f"row {v['row']}" in done.stdout
        assert found.rule in text
        assert case.coverage()["devices"][fp]["chain"]["status"] == "intact"


def test_a_store_rolled_back_as_a_whole_needs_the_collectors_registry(case: Case) -> None:
    """Without --heads-from the rolled-back store looks like an honest older one:
    the report says so of the device, and where heads were taken from; the docs
    say to give --heads-from."""
    roll_the_store_back_as_a_whole(case)
    done = case.audit()
    assert done.returncode == 0, done.stdout + done.stderr
    report = case.coverage()
    ann = report["devices"][case.built.ann]["chain"]
    early = json.loads((case.built.early / "heads" / case.head(case.built.ann).name).read_text())
    assert ann["status"] == "intact"
    assert ann["detail"] == f"intact up to witnessed head {early['seq']}"
    assert report["heads_from"] == "store"
    assert "--heads-from" in done.stdout
    docs = re.sub(r"\s+", " ", (Path(__file__).parents[2] / "docs" / "audit.md").read_text())
    assert "rolled back as a whole" in docs
    assert "org audit --heads-from" in docs

    again = case.audit("--heads-from", str(case.data))
    assert again.returncode == 1
    assert f"device {case.built.ann}: head-rollback" in again.stdout
    assert case.coverage()["heads_from"] == "registry"
    detail = case.coverage()["devices"][case.built.ann]["chain"]["detail"]
    assert "the store was rolled back" in detail


def test_the_heads_from_flag_is_one_definition_for_ingest_and_audit() -> None:
    helps = [ct("org", command, "--help").stdout for command in ("ingest", "audit")]
    # The option's own entry (the usage line names it first), up to the next option.
    entries = [h.rsplit("--heads-from DATA", 1)[1].split("\n  -", 1)[0] for h in helps]
    texts = [re.sub(r"\s+", " ", e) for e in entries]
    assert texts[0] == texts[1]
    assert "registry" in texts[0]


def test_a_report_file_edited_after_signing_is_named(case: Case) -> None:
    assert case.audit().returncode == 0
    assert ct("org", "audit", "check", str(case.out)).returncode == 0
    html = case.out / "index.html"
    html.write_text(html.read_text().replace("intact", "intakt", 1))
    done = ct("org", "audit", "check", str(case.out), check=False)
    assert done.returncode == 1
    assert "index.html" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_collectors_store_with_no_devices_says_so(case: Case) -> None:
    empty = case.built.empty
    done = case.audit("--heads-from", str(empty), data=empty, dataset=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "no devices" in done.stderr
    assert case.coverage()["devices"] == {}


def test_an_empty_dataset_directory_is_said_to_be_no_dataset(case: Case) -> None:
    shutil.rmtree(case.dataset)
    case.dataset.mkdir()
    done = case.audit()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dataset: 0 rows" in done.stdout
    assert done.stderr.count("\n") == 1
    assert f"note: {case.dataset} holds no dataset manifest" in done.stderr
    assert "org ingest --out" in done.stderr


def test_a_dataset_ingested_from_an_empty_store_proves_no_rows(case: Case, tmp_path: Path) -> None:
    empty = case.built.empty
    shutil.rmtree(case.dataset)
    ingest(case.built.org, case.dataset, empty)
    done = case.audit()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dataset: 0 rows" in done.stdout
    assert case.coverage()["proof"]["totals"]["rows"] == 0


@pytest.mark.parametrize("how", ["a-directory", "truncated"])
def test_an_unreadable_bundle_is_named_and_the_rest_audited(case: Case, how: str) -> None:
    name = case.built.names[0]
    path = case.bundle(name)
    if how == "a-directory":
        path.unlink()
        path.mkdir()
        reason = "unreadable"
    else:
        path.write_bytes(path.read_bytes()[:100])
        reason = "name-mismatch"
    done = case.audit()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"bundle {name[:16]}: {reason}" in done.stdout
    report = case.coverage()
    assert [r["reason"] for r in report["rejected_bundles"]] == [reason]
    assert f"{name} " in case.report_text()
    assert report["devices"][case.built.bob]["chain"]["status"] == "intact"


def test_an_unsigned_erasure_receipt_does_not_hide_a_device(case: Case) -> None:
    """Whoever can write the store, without the organisation's signing key, plants
    an erasure receipt naming Bob's device and removes his bundles and head: with
    no officer chain to check receipts against (no --dataset, no --org-ledger),
    the collector's registry must still name the device, and the audit fail."""
    bob = case.built.bob
    remove_a_devices_bundles_and_head(case)
    (case.data / "erased").mkdir(exist_ok=True)
    planted = {"v": 1, "type": "cleartrace-erasure-receipt", "subject": "0" * 32,
               "devices": [bob], "sig": "AAAA"}  # fmt: skip
    (case.data / "erased" / f"{'0' * 32}.json").write_text(json.dumps(planted))
    done = case.audit("--heads-from", str(case.data), dataset=False)
    assert "Traceback" not in done.stderr
    assert bob in case.coverage()["devices"], "a planted receipt hid the device"
    assert case.coverage()["devices"][bob]["chain"]["status"] == "bundles-missing"
    assert done.returncode == 1, done.stdout + done.stderr
