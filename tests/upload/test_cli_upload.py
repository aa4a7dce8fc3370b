"""`cleartrace enroll`, `upload` and `outbox list` through the CLI, bad input included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cleartrace.cli import main
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.orgkit import Org, approve, record_session


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def enrol_args(org: Org, token: str) -> list[str]:
    return [
        "enroll",
        "--collector",
        org.collector.url,
        "--policy",
        str(org.policy),
        "--token",
        token,
    ]


def test_bad_enrolments_change_nothing(
    org: Org, private_home: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    altered = json.loads(org.policy.read_text())
    altered["policy"]["hold_days"] = 0
    (tmp_path / "altered.json").write_text(json.dumps(altered))
    unsigned = {k: v for k, v in altered.items() if k != "signature"}
    (tmp_path / "unsigned.json").write_text(json.dumps(unsigned))
    token = org.collector.token()
    cases = [
        (["--policy", str(tmp_path / "altered.json")], "was altered after"),
        (["--policy", str(tmp_path / "unsigned.json")], "not signed"),
        (["--policy", str(tmp_path / "missing.json")], "cannot read the policy"),
        (["--collector", "http://127.0.0.1:9"], "names the collector"),
        (["--token", "not-a-token"], "unknown or was used"),
    ]
    for change, message in cases:
        argv = enrol_args(org, token)
        for i in range(0, len(change), 2):
            argv[argv.index(change[i]) + 1] = change[i + 1]
        code, _, err = run(capsys, *argv)
        assert code == 2, (change, err)
        assert message in err, (change, err)
        assert "\n" not in err.strip()
        assert not (private_home.home / "policy.json").exists()
        assert not (private_home.home / "enrolment.json").exists()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    argv = enrol_args(org, token)
    argv[argv.index("--token") : argv.index("--token") + 2] = ["--token-file", str(token_file)]
    code, out, _ = run(capsys, *argv, "--json")
    assert code == 0
    assert json.loads(out)["collector"] == org.collector.url


def test_enrolment_ends_by_pointing_to_what_the_person_is_asked_to_agree_to(
    org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *enrol_args(org, org.collector.token()))
    assert code == 0
    last = out.splitlines()[-1]
    assert "'cleartrace consent show'" in last
    assert "what you are asked to agree to" in last
    code, shown, _ = run(capsys, "consent", "show")
    assert code == 0  # the command it names exists and reads the policy just installed
    policy_id = json.loads(org.policy.read_text())["policy"]["id"]
    assert f"policy: {policy_id}" in shown


def test_outbox_and_upload_report_as_json(
    org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "outbox", "list")
    assert (code, out.splitlines()[0]) == (
        0,
        "not enrolled: nothing leaves this computer ('cleartrace enroll')",
    )
    assert run(capsys, *enrol_args(org, org.collector.token()))[0] == 0
    assert run(capsys, "consent", "give", "--all")[0] == 0
    home = Home.open(private_home, create=False)
    session = record_session(home)
    approve(home, session)
    home.close()
    code, out, _ = run(capsys, "outbox", "list", "--json")
    items = json.loads(out)["items"]
    assert [(i["session"], i["state"]) for i in items] == [(session, "approved")]
    code, out, _ = run(capsys, "upload", "--now", "--json")
    report = json.loads(out)
    assert (code, report["sessions"]) == (0, [session])
    assert report["bundles"] == org.collector.bundles()
    assert json.loads(run(capsys, "outbox", "list", "--json")[1])["items"] == []
    org.collector.stop()
    code, _, err = run(capsys, "upload")
    assert code == 2
    assert "cannot reach the collector" in err
