from __future__ import annotations

import json
from pathlib import Path

import pytest

from cleartrace.categories import Category, parse_categories
from cleartrace.consent.exclusions import (
    add_exclusion,
    list_exclusions,
    load_exclusions,
    remove_exclusion,
)
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.state import consent_from_records, give, refuse, withdraw
from cleartrace.errors import ConsentError, UsageError

K, T, F = Category.KEYS, Category.WINDOW_TITLES, Category.APP_FOCUS


def granted(ledger: Ledger) -> frozenset[Category]:
    return consent_from_records(ledger.records()).granted()


def test_nothing_is_granted_before_any_act(ledger: Ledger) -> None:
    state = consent_from_records(ledger.records())
    assert state.granted() == frozenset()
    assert set(state.as_dict().values()) == {"not asked"}


def test_give_then_withdraw(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), DEFAULT_POLICY)
    assert granted(ledger) == {K}
    withdraw(ledger, frozenset({K}), DEFAULT_POLICY)
    assert granted(ledger) == frozenset()
    kinds = [r["kind"] for r in ledger.records()]
    assert kinds == ["consent.given", "consent.withdrawn"]
    assert ledger.records()[0]["policy"] == DEFAULT_POLICY.reference()


def test_titles_need_app_focus(ledger: Ledger) -> None:
    with pytest.raises(ConsentError, match="'window_titles' needs 'app_focus'"):
        give(ledger, frozenset({T}), DEFAULT_POLICY)
    assert ledger.records() == []
    give(ledger, frozenset({T, F}), DEFAULT_POLICY)
    assert granted(ledger) == {T, F}


def test_withdrawing_app_focus_withdraws_titles_too(ledger: Ledger) -> None:
    give(ledger, frozenset({T, F, K}), DEFAULT_POLICY)
    withdraw(ledger, frozenset({F}), DEFAULT_POLICY)
    assert granted(ledger) == {K}
    assert ledger.records()[-1]["categories"] == ["app_focus", "window_titles"]


def test_giving_again_records_nothing_new(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), DEFAULT_POLICY)
    assert give(ledger, frozenset({K}), DEFAULT_POLICY) == []
    assert len(ledger.records()) == 1


def test_refusal_is_recorded_and_grants_nothing(ledger: Ledger) -> None:
    refuse(ledger, frozenset(Category), DEFAULT_POLICY)
    assert granted(ledger) == frozenset()
    assert consent_from_records(ledger.records()).as_dict()["keys"] == "refused"


def test_unknown_category_names_the_choices() -> None:
    with pytest.raises(ConsentError, match="choose from: keys"):
        parse_categories(["keys", "screenshots"])


def test_exclusions_add_remove_and_ledger(ledger: Ledger) -> None:
    add_exclusion(ledger, "Slack", DEFAULT_POLICY)
    assert ("slack", "personal") in list_exclusions(ledger.conn, DEFAULT_POLICY)
    assert load_exclusions(ledger.conn, DEFAULT_POLICY).is_excluded("SLACK")
    with pytest.raises(UsageError, match="already excluded"):
        add_exclusion(ledger, "slack", DEFAULT_POLICY)
    with pytest.raises(UsageError, match="cannot be removed"):
        remove_exclusion(ledger, "KeePassXC", DEFAULT_POLICY)
    remove_exclusion(ledger, "slack", DEFAULT_POLICY)
    with pytest.raises(UsageError, match="not one of your exclusions"):
        remove_exclusion(ledger, "slack", DEFAULT_POLICY)
    assert [(r["kind"], r["app"]) for r in ledger.records()] == [
        ("exclusion.added", "slack"),
        ("exclusion.removed", "slack"),
    ]


def test_default_exclusions_cover_password_managers_prompts_and_lockers() -> None:
    ex = load_exclusions(None, DEFAULT_POLICY)
    for app in (
        "KeePassXC",
        "Bitwarden",
        "1Password",
        "Pinentry",
        "ssh-askpass",
        "i3lock",
        "polkit-gnome-authentication-agent-1",
        "xscreensaver",
    ):
        assert ex.is_excluded(app), app
    assert not ex.is_excluded("firefox")
    assert not ex.is_excluded(None)


def test_policy_template_matches_the_built_in_policy() -> None:
    template = Path(__file__).parents[3] / "resources" / "policy" / "default-policy.json"
    assert Policy.from_dict(json.loads(template.read_text())) == DEFAULT_POLICY
