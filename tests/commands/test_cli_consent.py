"""`cleartrace consent show` tells what a person must know before agreeing, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from cleartrace.consent.signed_policy import install_policy, read_signed_policy
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from tests.support import VECTORS
from tests.support.cli import ct
from tests.support.notice import EXAMPLE_NOTICE

COLLECTOR = "https://collector.example"


def install_org_policy(paths: Paths, tmp_path: Path) -> None:
    org = generate(tmp_path / "keys", "x25519")
    policy = new_policy(org.bundle_public, COLLECTOR, hold_days=5, notice=EXAMPLE_NOTICE)
    install_policy(paths, sign_policy(policy, org.signing_private))


def test_under_the_built_in_policy_it_says_that_nothing_leaves(private_home: Paths) -> None:
    text = " ".join(ct("consent", "show").stdout.split())
    assert "Under this policy nothing leaves this computer" in text
    assert "What leaves this computer: Nothing. Who receives it: No one." in text
    assert "keys not asked" in text
    shown = json.loads(ct("consent", "show", "--json").stdout)
    assert shown["notice"] is None
    assert shown["uploads"] == {
        "leaves_computer": False,
        "collector": None,
        "hold_days": 3,
        "keep_uploaded_days": None,
    }


def test_under_an_organisation_it_shows_every_fact_of_the_notice(
    private_home: Paths, tmp_path: Path
) -> None:
    install_org_policy(private_home, tmp_path)
    text = ct("consent", "show").stdout
    for expected in (
        "Responsible for your data: Example GmbH (privacy@example.com, Musterweg 1, 10115 Berlin)",
        "Data protection officer: dpo@example.com",
        "Why it is collected: Train models of office workflows; Improve keyboard shortcuts",
        "Legal basis: Consent, GDPR Art. 6(1)(a); you may withdraw it at any time",
        "Who receives it: Example GmbH research team; Hosting: Example Cloud (processor)",
        "Where it is processed: Germany (EU)",
        "How long your organisation keeps it: 24 months after upload, then deleted",
        "not used to evaluate your individual performance (works agreement: "
        "Betriebsvereinbarung KI-Daten 2026/03)",
        f"are uploaded to {COLLECTOR}",
        "Each session waits 5 days for your review",
    ):
        assert expected in " ".join(text.split()), expected
    shown = json.loads(ct("consent", "show", "--json").stdout)
    assert shown["notice"] == EXAMPLE_NOTICE.as_dict()
    assert shown["uploads"]["leaves_computer"] is True
    assert (shown["uploads"]["collector"], shown["uploads"]["hold_days"]) == (COLLECTOR, 5)


def test_a_policy_signed_before_notices_says_what_it_does_not_tell(
    private_home: Paths,
) -> None:
    old = read_signed_policy((VECTORS / "policy" / "v-no-notice.json").read_bytes())
    install_policy(private_home, old)
    text = " ".join(ct("consent", "show").stdout.split())
    assert "does not say who is responsible for your data" in text
    assert "are uploaded to https://collector.example" in text
    assert json.loads(ct("consent", "show", "--json").stdout)["notice"] is None
