"""Acts of consent: a withdrawal goes through even when the policy does not verify."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cleartrace.actions import consent
from cleartrace.categories import Category
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.signed_policy import install_policy, policy_file
from cleartrace.errors import ConsentError, PolicyRefused
from cleartrace.home import Home
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from tests.support.sessions import closed_session


def install_then_tamper(paths: Paths, tmp_path: Path) -> None:
    org = generate(tmp_path / "org", "x25519")
    policy = new_policy(org.bundle_public, "https://collector.example")
    install_policy(paths, sign_policy(policy, org.signing_private))
    path = policy_file(paths)
    obj = json.loads(path.read_bytes())
    obj["policy"]["hold_days"] = 0  # altered after it was signed
    path.write_text(json.dumps(obj, indent=2))


def test_withdrawal_falls_back_to_the_built_in_policy_when_the_installed_one_is_broken(
    private_home: Paths, home: Home, tmp_path: Path
) -> None:
    install_then_tamper(private_home, tmp_path)
    done = consent.withdraw(home, [Category.KEYS])
    assert done.withdrawn == [Category.KEYS]
    assert done.policy == DEFAULT_POLICY
    assert isinstance(done.refused, PolicyRefused)
    record = home.ledger.records()[-1]
    assert record["kind"] == "consent.withdrawn"
    assert record["policy"]["id"] == DEFAULT_POLICY.id
    assert consent.current(home.ledger, DEFAULT_POLICY).granted() == {Category.APP_FOCUS}


def test_giving_and_refusing_are_blocked_by_a_broken_policy(
    private_home: Paths, home: Home, tmp_path: Path
) -> None:
    install_then_tamper(private_home, tmp_path)
    before = len(home.ledger.records())
    with pytest.raises(PolicyRefused):
        consent.give(home, [Category.CLICKS])
    with pytest.raises(PolicyRefused):
        consent.refuse(home, [Category.CLICKS])
    assert len(home.ledger.records()) == before


def test_withdrawal_under_a_sound_policy_reports_no_fallback(home: Home) -> None:
    done = consent.withdraw(home, [Category.APP_FOCUS])
    assert done.refused is None
    assert done.withdrawn == [Category.APP_FOCUS]


def test_refusing_what_is_given_is_an_error_unless_the_given_are_skipped(home: Home) -> None:
    with pytest.raises(ConsentError, match="withdraw it instead"):
        consent.refuse(home, [Category.KEYS, Category.CLICKS])
    now = consent.refuse(home, [Category.KEYS, Category.CLICKS], skip_given=True)
    assert now.granted() == {Category.KEYS, Category.APP_FOCUS}
    assert home.ledger.records()[-1]["categories"] == ["clicks"]


def test_a_recorder_that_does_not_answer_delays_no_withdrawal_and_keeps_no_session(
    private_home: Paths, home: Home
) -> None:
    # Something holds the control socket and never answers (a recorder stuck
    # in a long flush, say): the withdrawal and the deletions asked with it
    # must happen all the same; the recorder reads the ledger on its next tick.
    closed_session(home)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(private_home.socket))
    silent.listen(8)
    try:
        done = consent.withdraw(home, list(Category), delete_sessions=True)
    finally:
        silent.close()
    assert sorted(done.withdrawn) == sorted([Category.KEYS, Category.APP_FOCUS])
    assert home.store.list_sessions() == []
    assert [r["kind"] for r in home.ledger.records()][-1] == "session.deleted"
