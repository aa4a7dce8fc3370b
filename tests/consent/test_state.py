"""Consent acts and the state folded from the ledger."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from cleartrace.categories import USUAL, Category
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.state import (
    ConsentStatus,
    consent_from_records,
    give,
    refuse,
    withdraw,
)
from cleartrace.errors import ConsentError

K, C, F, T = Category.KEYS, Category.CLICKS, Category.APP_FOCUS, Category.WINDOW_TITLES
R = Category.TYPING_RHYTHM
P = DEFAULT_POLICY
#: A policy that asks for typing rhythm too (an organisation must name it).
RHYTHM = dataclasses.replace(P, categories=tuple(Category))


def granted(ledger: Ledger) -> frozenset[Category]:
    return consent_from_records(ledger.records()).granted()


def kinds(ledger: Ledger) -> list[str]:
    return [r["kind"] for r in ledger.records()]


def test_nothing_is_granted_before_any_act(ledger: Ledger) -> None:
    state = consent_from_records(ledger.records())
    assert state.granted() == frozenset()
    assert state.as_dict() == {c.value: "not asked" for c in Category}


def test_give_records_sorted_categories_and_the_policy(ledger: Ledger) -> None:
    assert give(ledger, frozenset({K, C}), P) == [C, K]
    (record,) = ledger.records()
    assert record["kind"] == "consent.given"
    assert record["categories"] == ["clicks", "keys"]
    assert record["policy"] == {"id": P.id, "version": P.version, "sha256": P.sha256}
    assert granted(ledger) == {K, C}


def test_give_then_withdraw_then_give_again(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), P)
    assert withdraw(ledger, frozenset({K}), P) == [K]
    assert granted(ledger) == frozenset()
    assert consent_from_records(ledger.records()).status(K) is ConsentStatus.WITHDRAWN
    give(ledger, frozenset({K}), P)
    assert granted(ledger) == {K}
    assert kinds(ledger) == ["consent.given", "consent.withdrawn", "consent.given"]


def test_window_titles_need_app_focus_and_nothing_is_recorded_without(ledger: Ledger) -> None:
    with pytest.raises(ConsentError, match="'window_titles' needs 'app_focus'"):
        give(ledger, frozenset({T, K}), P)
    assert ledger.records() == []


def test_window_titles_may_come_with_app_focus_in_the_same_act(ledger: Ledger) -> None:
    assert give(ledger, frozenset({T, F}), P) == [F, T]
    assert len(ledger.records()) == 1


def test_window_titles_may_follow_app_focus_given_earlier(ledger: Ledger) -> None:
    give(ledger, frozenset({F}), P)
    assert give(ledger, frozenset({T}), P) == [T]
    assert granted(ledger) == {F, T}


def test_withdrawing_app_focus_withdraws_window_titles_in_the_same_record(ledger: Ledger) -> None:
    give(ledger, frozenset({T, F, K}), P)
    assert withdraw(ledger, frozenset({F}), P) == [F, T]
    assert granted(ledger) == {K}
    assert ledger.records()[-1]["categories"] == ["app_focus", "window_titles"]


def test_giving_what_is_given_records_nothing(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), P)
    assert give(ledger, frozenset({K}), P) == []
    assert give(ledger, frozenset({K, C}), P) == [C]
    assert [r["categories"] for r in ledger.records()] == [["keys"], ["clicks"]]


def test_withdrawing_what_is_not_given_records_nothing(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), P)
    assert withdraw(ledger, frozenset({C, T}), P) == []
    assert withdraw(ledger, frozenset({K, C}), P) == [K]
    assert kinds(ledger) == ["consent.given", "consent.withdrawn"]


def test_refusal_is_recorded_and_grants_nothing(ledger: Ledger) -> None:
    assert refuse(ledger, frozenset(Category), RHYTHM) == sorted(Category)
    assert granted(ledger) == frozenset()
    assert set(consent_from_records(ledger.records()).as_dict().values()) == {"refused"}


def test_the_built_in_policy_does_not_ask_for_typing_rhythm(ledger: Ledger) -> None:
    assert R not in P.categories
    assert set(P.categories) == set(USUAL)
    with pytest.raises(ConsentError, match="does not ask for: typing_rhythm"):
        give(ledger, frozenset({K, R}), P)
    assert ledger.records() == []


def test_typing_rhythm_needs_keys_and_goes_with_them(ledger: Ledger) -> None:
    with pytest.raises(ConsentError, match="'typing_rhythm' needs 'keys': key timing"):
        give(ledger, frozenset({R, C}), RHYTHM)
    assert give(ledger, frozenset({K, R}), RHYTHM) == [K, R]
    assert withdraw(ledger, frozenset({K}), RHYTHM) == [K, R]
    assert granted(ledger) == frozenset()


def test_refusing_app_focus_refuses_window_titles_too(ledger: Ledger) -> None:
    assert refuse(ledger, frozenset({F}), P) == [F, T]


def test_refusing_again_records_nothing(ledger: Ledger) -> None:
    refuse(ledger, frozenset({K}), P)
    assert refuse(ledger, frozenset({K}), P) == []
    assert kinds(ledger) == ["consent.refused"]


def test_refusing_a_given_category_asks_for_a_withdrawal(ledger: Ledger) -> None:
    give(ledger, frozenset({K}), P)
    with pytest.raises(ConsentError, match="consent is given for: keys; withdraw it"):
        refuse(ledger, frozenset({K, C}), P)
    assert kinds(ledger) == ["consent.given"]


def test_a_refused_category_can_be_given_later(ledger: Ledger) -> None:
    refuse(ledger, frozenset({K}), P)
    give(ledger, frozenset({K}), P)
    assert granted(ledger) == {K}


@pytest.mark.parametrize("act", [give, refuse, withdraw])
def test_an_act_without_categories_is_an_error(
    ledger: Ledger, act: Callable[[Ledger, frozenset[Category], object], list[Category]]
) -> None:
    with pytest.raises(ConsentError, match="no category named"):
        act(ledger, frozenset(), P)
    assert ledger.records() == []


def test_consent_only_for_what_the_policy_asks(ledger: Ledger) -> None:
    narrow = dataclasses.replace(P, id="keys-only", version=1, categories=(K,))
    with pytest.raises(ConsentError, match="'keys-only' v1 does not ask for: clicks"):
        give(ledger, frozenset({K, C}), narrow)
    with pytest.raises(ConsentError, match="does not ask for"):
        refuse(ledger, frozenset({C}), narrow)
    assert ledger.records() == []


def test_withdrawal_is_never_blocked_by_a_narrower_policy(ledger: Ledger) -> None:
    give(ledger, frozenset({K, C}), P)
    narrow = dataclasses.replace(P, id="keys-only", version=2, categories=(K,))
    assert withdraw(ledger, frozenset({C}), narrow) == [C]
    assert granted(ledger) == {K}
    assert ledger.records()[-1]["policy"]["id"] == "keys-only"


def test_state_is_the_latest_act_and_skips_unknown_kinds_and_categories() -> None:
    policy = P.reference()
    records: list[dict[str, object]] = [
        {"kind": "consent.given", "categories": ["keys", "clicks"], "policy": policy},
        {"kind": "recording.paused", "until": None},
        {"kind": "consent.withdrawn", "categories": ["keys"], "policy": policy},
        {"kind": "consent.given", "categories": ["screenshots"], "policy": policy},
        {"kind": "consent.refused", "categories": ["scroll"], "policy": policy},
    ]
    state = consent_from_records(records)
    assert state.granted() == {C}
    assert state.as_dict() == {
        "keys": "withdrawn",
        "mouse_move": "not asked",
        "clicks": "given",
        "scroll": "refused",
        "app_focus": "not asked",
        "window_titles": "not asked",
        "typing_rhythm": "not asked",
    }


def test_two_processes_giving_the_same_consent_at_once_record_it_once(
    ledger: Ledger, open_ledger: Callable[[], Ledger]
) -> None:
    ledgers = [open_ledger(), open_ledger()]
    start = threading.Barrier(2)
    results: list[list[Category]] = []

    def act(led: Ledger) -> None:
        start.wait()
        results.append(give(led, frozenset({K}), P))

    threads = [threading.Thread(target=act, args=(led,)) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [[], [K]]
    assert kinds(ledger) == ["consent.given"]


def test_consent_counts_only_for_the_policy_it_was_given_to(ledger: Ledger) -> None:
    org = dataclasses.replace(P, id="acme", version=1)
    give(ledger, frozenset({K, C}), P)
    refuse(ledger, frozenset({F}), P)
    under_org = consent_from_records(ledger.records(), org)
    # Given to other terms: not asked under the new ones, so the person is asked again.
    assert under_org.granted() == frozenset()
    assert under_org.status(F) is ConsentStatus.NOT_ASKED
    assert consent_from_records(ledger.records(), P).granted() == {K, C}
    assert give(ledger, frozenset({K}), org) == [K]
    assert consent_from_records(ledger.records(), org).granted() == {K}


def test_a_withdrawal_takes_back_consent_given_to_any_policy(ledger: Ledger) -> None:
    org = dataclasses.replace(P, id="acme", version=1)
    give(ledger, frozenset({K, C}), P)
    give(ledger, frozenset({K}), org)
    assert withdraw(ledger, frozenset({K, C}), org) == [C, K]
    for policy in (P, org, None):
        assert consent_from_records(ledger.records(), policy).granted() == frozenset()
