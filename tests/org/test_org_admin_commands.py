"""`org keygen`, `org policy init|sign|show` and the device's `policy show`, run through
their own argparse wiring (`register`), as cli.py will mount them."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from cleartrace.cli import _add, main
from cleartrace.commands.org_admin import register, register_device
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.signed_policy import install_policy, policy_file, read_signed_policy
from cleartrace.errors import ClearTraceError, PolicyRefused
from cleartrace.paths import Paths
from tests.support import VECTORS
from tests.support.notice import EXAMPLE_NOTICE, EXAMPLE_TOML

COLLECTOR = "https://collector.example"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cleartrace")
    sub = top.add_subparsers(dest="command", required=True)
    org = _add(sub, "org", "the organisation's side", None)
    register(org.add_subparsers(dest="org_command", required=True), _add)
    register_device(sub, _add)
    return top


def run(*argv: str) -> Any:
    args = parser().parse_args(argv)
    return args.func(args)


@pytest.fixture
def info(tmp_path: Path) -> Path:
    """The notice an officer writes for `org policy init --info`."""
    path = tmp_path / "info.toml"
    path.write_text(EXAMPLE_TOML, encoding="utf-8")
    return path


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "keys"
    run("org", "keygen", "--out", str(out), "--suite", "x25519")
    capsys.readouterr()
    return out


def test_keygen_prints_both_public_fingerprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    run("org", "keygen", "--out", str(out))
    printed = capsys.readouterr()
    bundle = json.loads((out / "bundle.pub").read_text())
    sign = json.loads((out / "sign.pub").read_text())
    assert f"bundle key:   {bundle['fingerprint']} (mlkem768-x25519)" in printed.out
    assert f"signing key:  {sign['fingerprint']}" in printed.out
    officer = json.loads((out / "officer.pub").read_text())
    assert f"officer key:  {officer['fingerprint']}" in printed.out
    assert "keep them offline" in printed.err
    for private in ("bundle.key", "sign.key", "officer.key"):
        assert stat.S_IMODE((out / private).stat().st_mode) == 0o600
        secret = json.loads((out / private).read_text())
        for field in ("x25519", "mlkem768_seed", "ed25519"):
            if field in secret:
                assert secret[field] not in printed.out + printed.err


def test_policy_init_then_show_verifies_and_prints_the_signer(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "policy.json"
    run(
        "org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
        "--info", str(info),
        "--out", str(out), "--id", "acme", "--version", "2", "--category", "keys",
        "--category", "clicks", "--hold-days-max", "7", "--keep-uploaded-days", "0",
    )  # fmt: skip
    assert "policy acme v2 signed by sha256:" in capsys.readouterr().err
    run("org", "policy", "show", str(out), "--json")
    shown = json.loads(capsys.readouterr().out)
    signer = json.loads((keys / "sign.pub").read_text())["fingerprint"]
    assert shown["signer"] == signer
    assert shown["policy"]["categories"] == ["keys", "clicks"]
    assert (shown["policy"]["hold_days_max"], shown["policy"]["keep_uploaded_days"]) == (7, 0)
    assert shown["sha256"] == read_signed_policy(out.read_bytes()).policy.sha256
    run("org", "policy", "show", str(out))
    text = capsys.readouterr().out
    assert f"signed by:    {signer}" in text
    assert "collector:    https://collector.example" in text
    assert "local copy:   shredded right after upload" in text


def test_policy_sign_signs_an_edited_file(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "policy.json"
    run(
        "org",
        "policy",
        "init",
        "--keys",
        str(keys),
        "--collector",
        COLLECTOR,
        "--info",
        str(info),
        "--out",
        str(first),
    )
    obj = json.loads(first.read_text())
    obj["policy"]["version"] = 2
    obj["policy"]["purpose"] = "Edited."
    first.write_text(json.dumps(obj))
    second = tmp_path / "signed.json"
    run("org", "policy", "sign", "--keys", str(keys), "--in", str(first), "--out", str(second))
    assert read_signed_policy(second.read_bytes()).policy.purpose == "Edited."


def test_policy_show_of_an_altered_file_is_refused(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.json"
    run(
        "org",
        "policy",
        "init",
        "--keys",
        str(keys),
        "--collector",
        COLLECTOR,
        "--info",
        str(info),
        "--out",
        str(path),
    )
    obj = json.loads(path.read_text())
    obj["policy"]["hold_days"] = 0
    path.write_text(json.dumps(obj))
    with pytest.raises(PolicyRefused, match="altered") as raised:
        run("org", "policy", "show", str(path))
    assert raised.value.exit_code == 2


def test_policy_init_sets_the_reports_least_group_and_show_prints_it(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plain = tmp_path / "policy.json", tmp_path / "plain.json"
    base = ("org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--info", str(info))  # fmt: skip
    run(*base, "--out", str(out), "--report-min-group", "8")
    run(*base, "--out", str(plain))
    assert read_signed_policy(out.read_bytes()).policy.as_dict()["report_min_group"] == 8
    assert "report_min_group" not in read_signed_policy(plain.read_bytes()).policy.as_dict()
    capsys.readouterr()
    run("org", "policy", "show", str(out))
    assert "report k:     fleet figures only for groups of at least 8 devices" in (
        capsys.readouterr().out
    )
    run("org", "policy", "show", str(plain))
    assert "at least 5 devices (the default)" in capsys.readouterr().out
    with pytest.raises(ClearTraceError, match=r"'report_min_group'.*2 to 1000"):
        run(*base, "--out", str(tmp_path / "one.json"), "--report-min-group", "1")


def test_a_bad_number_of_days_is_a_usage_error(keys: Path, info: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        run(
            "org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--info", str(info), "--out", str(tmp_path / "p.json"), "--hold-days", "-1",
        )  # fmt: skip
    assert raised.value.code == 2


def test_an_unknown_category_is_a_clear_error(keys: Path, info: Path, tmp_path: Path) -> None:
    with pytest.raises(ClearTraceError, match="unknown category 'screenshots'"):
        run(
            "org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--info", str(info), "--out", str(tmp_path / "p.json"), "--category", "screenshots",
        )  # fmt: skip


def test_device_policy_show_without_an_installed_policy_shows_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run("policy", "show", "--json")
    shown = json.loads(capsys.readouterr().out)
    assert shown["installed"] is False
    assert (shown["signer"], shown["file"]) == (None, None)
    assert shown["sha256"] == DEFAULT_POLICY.sha256
    run("policy", "show")
    text = capsys.readouterr().out
    assert "the built-in default" in text
    assert "collector:    none (nothing is uploaded)" in text


def test_device_policy_show_shows_the_installed_policy(
    keys: Path, info: Path, tmp_path: Path, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.json"
    run(
        "org",
        "policy",
        "init",
        "--keys",
        str(keys),
        "--collector",
        COLLECTOR,
        "--info",
        str(info),
        "--out",
        str(path),
    )
    install_policy(private_home, read_signed_policy(path.read_bytes()))
    capsys.readouterr()
    run("policy", "show", "--json")
    shown = json.loads(capsys.readouterr().out)
    assert shown["installed"] is True
    assert shown["file"] == str(policy_file(private_home))
    assert shown["signer"] == json.loads((keys / "sign.pub").read_text())["fingerprint"]
    assert shown["policy"]["collector"] == COLLECTOR


def test_through_the_cli_a_refused_policy_is_one_line_and_exit_2(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.json"
    assert main(["org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
        "--info", str(info),
                 "--out", str(path)]) == 0  # fmt: skip
    assert main(["org", "policy", "show", str(path)]) == 0
    obj = json.loads(path.read_text())
    del obj["signature"]
    path.write_text(json.dumps(obj))
    capsys.readouterr()
    assert main(["org", "policy", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cleartrace: {path} is not signed")
    assert len(err.strip().splitlines()) == 1


def test_policy_init_puts_the_notice_in_the_signed_policy_and_show_prints_it(
    keys: Path, info: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "policy.json"
    run(
        "org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
        "--info", str(info), "--out", str(out),
    )  # fmt: skip
    assert read_signed_policy(out.read_bytes()).policy.notice == EXAMPLE_NOTICE
    capsys.readouterr()
    run("org", "policy", "show", str(out))
    text = capsys.readouterr().out
    assert "controller:   Example GmbH (privacy@example.com, Musterweg 1, 10115 Berlin)" in text
    assert "purposes:     Train models of office workflows; Improve keyboard shortcuts" in text
    assert "(works agreement: Betriebsvereinbarung KI-Daten 2026/03)" in text


def test_policy_init_without_a_notice_is_refused_naming_what_is_missing(
    keys: Path, tmp_path: Path
) -> None:
    out = tmp_path / "policy.json"
    with pytest.raises(ClearTraceError, match=r"controller.*purposes.*--info FILE"):
        run("org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--out", str(out))  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("purposes = [", "missing purposes"),
        ('contact = "privacy', "missing controller contact"),
        ('name = "Example', "missing controller name"),
    ],
)
def test_policy_init_with_a_notice_lacking_controller_or_purposes_is_refused(
    keys: Path, tmp_path: Path, drop: str, missing: str
) -> None:
    info = tmp_path / "info.toml"
    lines = [line for line in EXAMPLE_TOML.splitlines() if not line.startswith(drop)]
    info.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "policy.json"
    with pytest.raises(ClearTraceError, match=f"{info}.*{missing}"):
        run("org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--info", str(info), "--out", str(out))  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("purposes = [\n", "not valid TOML"),
        ('purpos = ["typo"]\n', "unknown keys \\['purpos'\\]"),
    ],
)
def test_a_bad_info_file_names_the_file_and_the_problem(
    keys: Path, tmp_path: Path, text: str, problem: str
) -> None:
    info = tmp_path / "info.toml"
    info.write_text(text, encoding="utf-8")
    with pytest.raises(ClearTraceError, match=f"{info}.*{problem}"):
        run("org", "policy", "init", "--keys", str(keys), "--collector", COLLECTOR,
            "--info", str(info), "--out", str(tmp_path / "p.json"))  # fmt: skip


def test_policy_show_says_when_an_organisation_policy_has_no_notice(
    private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    run("policy", "show")
    assert "notice:" not in capsys.readouterr().out  # the built-in policy has no organisation
    old = read_signed_policy((VECTORS / "policy" / "v-no-notice.json").read_bytes())
    install_policy(private_home, old)
    run("policy", "show")
    assert "notice:       none (people are not told who is responsible" in capsys.readouterr().out
