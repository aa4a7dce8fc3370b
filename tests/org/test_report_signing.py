"""The officer's key and the signed report: `org keygen` writes officer.key/officer.pub,
`sign_report` writes MANIFEST and SIGNATURE, and `cleartrace org audit check`
(a real CLI process) finds every change made after signing, naming the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cleartrace.errors import KeyStorageError, UsageError
from cleartrace.formats import b64url, canonical
from cleartrace.org.keys import OFFICER_KEY, OFFICER_PUB, load_officer_key, load_officer_public
from cleartrace.org.report_signing import check_report, sign_report
from tests.support.cli import ct


@pytest.fixture(scope="module")
def officer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key directory made by `cleartrace org keygen` (officer key included)."""
    keys = tmp_path_factory.mktemp("org") / "keys"
    ct("org", "keygen", "--out", str(keys), "--suite", "x25519")
    return keys


def _report(root: Path) -> Path:
    report = root / "report"
    (report / "ledgers").mkdir(parents=True)
    (report / "index.html").write_text("<html><body>fleet</body></html>\n")
    (report / "coverage.json").write_text('{"devices": 2}\n')
    (report / "ledgers" / "a.jsonl").write_text('{"seq": 1}\n')
    (report / "ledgers" / "b.jsonl").write_bytes(b"")
    return report


def _signed(tmp_path: Path, officer: Path) -> Path:
    report = _report(tmp_path)
    sign_report(report, load_officer_key(officer))
    return report


def _fingerprint(officer: Path) -> str:
    return str(json.loads((officer / OFFICER_PUB).read_text())["fingerprint"])


def check(report: Path, *extra: str) -> tuple[int, str]:
    done = ct("org", "audit", "check", str(report), *extra, check=False)
    return done.returncode, done.stdout + done.stderr


def test_keygen_writes_the_officer_key_private_and_prints_its_fingerprint(officer: Path) -> None:
    assert stat.S_IMODE((officer / OFFICER_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE((officer / OFFICER_PUB).stat().st_mode) == 0o644
    pub = json.loads((officer / OFFICER_PUB).read_text())
    assert pub["type"] == "cleartrace-org-officer-public-key"
    assert pub["fingerprint"].startswith("sha256:")


def test_officer_only_adds_the_key_to_an_existing_directory_and_never_overwrites(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    ct("org", "keygen", "--out", str(keys), "--suite", "x25519")
    (keys / OFFICER_KEY).unlink()
    (keys / OFFICER_PUB).unlink()
    bundle = (keys / "bundle.key").read_bytes()
    done = ct("org", "keygen", "--officer-only", "--out", str(keys))
    assert "officer key:" in done.stdout
    assert _fingerprint(keys) in done.stdout
    assert (keys / "bundle.key").read_bytes() == bundle
    load_officer_key(keys)
    again = ct("org", "keygen", "--officer-only", "--out", str(keys), check=False)
    assert again.returncode == 2
    assert "officer.key" in again.stderr
    assert "never overwritten" in again.stderr


def test_an_officer_key_readable_by_others_or_a_symlink_is_refused(
    tmp_path: Path, officer: Path
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / OFFICER_KEY).write_bytes((officer / OFFICER_KEY).read_bytes())
    os.chmod(keys / OFFICER_KEY, 0o644)
    with pytest.raises(KeyStorageError, match="readable by group or others"):
        load_officer_key(keys)
    (keys / OFFICER_KEY).unlink()
    (keys / OFFICER_KEY).symlink_to(officer / OFFICER_KEY)
    with pytest.raises(KeyStorageError, match="symbolic link"):
        load_officer_key(keys)
    (keys / OFFICER_PUB).symlink_to(officer / OFFICER_PUB)
    with pytest.raises(KeyStorageError, match="symbolic link"):
        load_officer_public(keys / OFFICER_PUB)


def test_a_signed_report_checks_ok_with_and_without_the_officer_key(
    tmp_path: Path, officer: Path
) -> None:
    report = _signed(tmp_path, officer)
    manifest = json.loads((report / "MANIFEST").read_text())
    assert [f["path"] for f in manifest["files"]] == [
        "coverage.json",
        "index.html",
        "ledgers/a.jsonl",
        "ledgers/b.jsonl",
    ]
    assert manifest["files"][3]["size"] == 0
    fp = _fingerprint(officer)
    for extra in (
        (),
        ("--officer-key", str(officer / OFFICER_PUB)),
        ("--officer-key", str(officer)),
    ):
        code, out = check(report, *extra)
        assert code == 0, out
        assert f"ok: 4 files, signed by {fp}" in out


def test_a_changed_byte_is_named(tmp_path: Path, officer: Path) -> None:
    report = _signed(tmp_path, officer)
    raw = bytearray((report / "ledgers" / "a.jsonl").read_bytes())
    raw[2] ^= 1
    (report / "ledgers" / "a.jsonl").write_bytes(bytes(raw))
    code, out = check(report)
    assert code == 1
    assert "ledgers/a.jsonl" in out
    assert "changed" in out
    assert "index.html" not in out


def test_an_added_and_a_deleted_file_are_named(tmp_path: Path, officer: Path) -> None:
    report = _signed(tmp_path, officer)
    (report / "coverage.json").unlink()
    (report / "ledgers" / "extra.jsonl").write_text("{}\n")
    code, out = check(report)
    assert code == 1
    assert "coverage.json" in out
    assert "missing" in out
    assert "ledgers/extra.jsonl" in out
    assert "not in the manifest" in out


def test_a_swapped_signature_or_manifest_fails(tmp_path: Path, officer: Path) -> None:
    first = _signed(tmp_path / "one", officer)
    second = _report(tmp_path / "two")
    (second / "index.html").write_text("<html>other</html>\n")
    sign_report(second, load_officer_key(officer))
    (first / "SIGNATURE").write_bytes((second / "SIGNATURE").read_bytes())
    code, out = check(first)
    assert code == 1
    assert "SIGNATURE" in out
    assert "does not verify" in out
    # The other report's manifest with its signature: the files do not match it.
    (first / "MANIFEST").write_bytes((second / "MANIFEST").read_bytes())
    code, out = check(first)
    assert code == 1
    assert "index.html" in out
    assert "changed" in out


def test_a_report_signed_by_another_key_fails_against_the_officer_key(
    tmp_path: Path, officer: Path
) -> None:
    other = tmp_path / "other"
    ct("org", "keygen", "--officer-only", "--out", str(other))
    report = _report(tmp_path)
    sign_report(report, load_officer_key(other))
    code, out = check(report)
    assert code == 0, out
    assert _fingerprint(other) in out
    code, out = check(report, "--officer-key", str(officer / OFFICER_PUB))
    assert code == 1
    assert _fingerprint(other) in out
    assert _fingerprint(officer) in out


def test_a_missing_signature_and_a_missing_directory_are_named(
    tmp_path: Path, officer: Path
) -> None:
    report = _report(tmp_path)
    code, out = check(report)
    assert code == 1
    assert "MANIFEST" in out
    assert "Traceback" not in out
    code, out = check(tmp_path / "nowhere")
    assert code == 2
    assert "nowhere" in out
    assert "Traceback" not in out


def test_symlinks_are_refused_when_signing_and_checking(tmp_path: Path, officer: Path) -> None:
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not part of the report\n")
    report = _report(tmp_path)
    (report / "link.txt").symlink_to(secret)
    with pytest.raises(UsageError, match=r"link\.txt"):
        sign_report(report, load_officer_key(officer))
    (report / "link.txt").unlink()
    sign_report(report, load_officer_key(officer))
    os.unlink(report / "coverage.json")
    (report / "coverage.json").symlink_to(secret)
    code, out = check(report)
    assert code == 1
    assert "coverage.json" in out
    assert "symbolic link" in out


def test_a_manifest_path_escaping_the_directory_is_refused(tmp_path: Path, officer: Path) -> None:
    report = _report(tmp_path)
    (tmp_path / "outside.txt").write_text("x\n")
    key = load_officer_key(officer)
    sign_report(report, key)
    manifest = json.loads((report / "MANIFEST").read_text())
    manifest["files"].append({"path": "../outside.txt", "sha256": "0" * 64, "size": 2})
    # An attacker holding the key signs it too: the check still refuses the path.
    body = canonical(manifest)
    (report / "MANIFEST").write_bytes(body)
    signature = json.loads((report / "SIGNATURE").read_text())
    signature["signature"] = b64url(key.sign(body))
    (report / "SIGNATURE").write_text(json.dumps(signature))
    result = check_report(report, None)
    assert not result.ok
    assert any("../outside.txt" in p and "outside" in p for p in result.problems)
