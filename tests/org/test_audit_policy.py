"""`org audit --policy`: the policy must be the organisation's own, and its least group
(`report_min_group`) is the report's k, which the command line may raise but not lower."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cleartrace.consent.policy import Policy
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import sign_policy
from tests.org.test_evidence import audit
from tests.support.cli import ct
from tests.support.orgkit import Org


def with_least_group(org: Org, tmp_path: Path, k: int) -> Path:
    """The organisation's policy with report_min_group = k, signed with its own key."""
    signed = json.loads(org.policy.read_text())
    signed["policy"]["report_min_group"] = k
    signed["policy"]["version"] += 1
    edited, out = tmp_path / "edited.json", tmp_path / f"policy-k{k}.json"
    edited.write_text(json.dumps(signed))
    ct("org", "policy", "sign", "--keys", str(org.keys_dir), "--in", str(edited), "--out", str(out))
    return out


def k_used(out: Path) -> Any:
    return json.loads((out / "coverage.json").read_text())["k"]


def test_k_comes_from_the_policy_and_the_command_line_may_only_raise_it(
    org: Org, tmp_path: Path
) -> None:
    policy = with_least_group(org, tmp_path, 7)
    done = audit(org, tmp_path / "r1", "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    assert k_used(tmp_path / "r1") == {"value": 7, "source": "policy"}
    assert "fleet figures only for groups of at least 7 devices (k from policy)" in done.stdout
    evidence = json.loads((tmp_path / "r1" / "evidence" / "evidence.json").read_text())
    assert evidence["fleet"]["k"] == 7
    done = audit(org, tmp_path / "r2", "--policy", str(policy), "--k", "9")
    assert done.returncode == 0, done.stderr
    assert k_used(tmp_path / "r2") == {"value": 9, "source": "--k"}
    # Lower than the works agreement's threshold: refused, nothing written.
    done = audit(org, tmp_path / "r3", "--policy", str(policy), "--k", "3")
    assert done.returncode == 2
    assert "--k 3" in done.stderr
    assert "report_min_group 7" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r3").exists()
    # A policy without the field: 5.
    done = audit(org, tmp_path / "r4", "--policy", str(org.policy))
    assert k_used(tmp_path / "r4") == {"value": 5, "source": "policy"}, done.stderr


def test_without_a_policy_k_is_the_command_lines_or_five(org: Org, tmp_path: Path) -> None:
    assert audit(org, tmp_path / "r1").returncode == 0
    assert k_used(tmp_path / "r1") == {"value": 5, "source": "default"}
    assert audit(org, tmp_path / "r2", "--k", "2").returncode == 0
    assert k_used(tmp_path / "r2") == {"value": 2, "source": "--k"}


def test_a_policy_signed_by_another_organisation_is_refused(org: Org, tmp_path: Path) -> None:
    other = generate(tmp_path / "other-keys")
    ours = Policy.from_dict(json.loads(org.policy.read_text())["policy"])
    theirs = sign_policy(ours, other.signing_private)
    foreign = tmp_path / "foreign.json"
    foreign.write_bytes(theirs.raw)
    out = tmp_path / "report"
    done = audit(org, out, "--policy", str(foreign))
    assert done.returncode == 2, done.stdout
    ours_fp = json.loads((org.keys_dir / "sign.pub").read_text())["fingerprint"]
    assert theirs.fingerprint in done.stderr
    assert ours_fp in done.stderr
    assert str(foreign) in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
