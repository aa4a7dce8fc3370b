"""Typing rhythm on the command line: asked only when named, never given by `--all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.signed_policy import install_policy
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths


def _said(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out + err


@pytest.fixture
def asking(private_home: Paths, tmp_path: Path) -> Paths:
    """A home under an organisation's policy that asks for every category."""
    org = generate(tmp_path / "keys")
    policy = new_policy(org.bundle_public, "https://collector.example", categories=list(Category))
    install_policy(private_home, sign_policy(policy, org.signing_private))
    return private_home


def test_give_all_leaves_typing_rhythm_off_until_it_is_named(
    asking: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _said(capsys, "consent", "give", "--all")
    assert "typing_rhythm" not in line
    assert "keys" in line
    shown = _said(capsys, "consent", "show")
    assert "typing_rhythm  not asked" in shown
    _said(capsys, "consent", "give", "--category", "typing_rhythm")
    assert "typing_rhythm  given" in _said(capsys, "consent", "show")
