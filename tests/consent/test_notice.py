"""The organisation's notice inside its policy: shape, hash, and policies signed before it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from cleartrace.categories import Category
from cleartrace.consent.notice_text import facts
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import active_policy, install_policy, read_signed_policy
from cleartrace.errors import UsageError
from cleartrace.paths import Paths
from tests.support import VECTORS
from tests.support.notice import EXAMPLE_NOTICE

OLD = VECTORS / "policy" / "v-no-notice.json"
#: The hash the policy in OLD had when it was signed, before notices existed.
OLD_SHA256 = "85840f0b078b630a83ee0ba70d1c6fd1d2bf557dd698e7624a2c60a620267715"


def with_notice(**change: Any) -> dict[str, Any]:
    return {**DEFAULT_POLICY.as_dict(), "notice": {**EXAMPLE_NOTICE.as_dict(), **change}}


def test_a_policy_with_a_notice_round_trips_and_its_hash_covers_the_notice() -> None:
    data = with_notice()
    policy = Policy.from_dict(data)
    assert policy.notice == EXAMPLE_NOTICE
    assert policy.as_dict() == data
    assert policy.sha256 == hashlib.sha256(rfc8785.dumps(data)).hexdigest()
    changed = dataclasses.replace(EXAMPLE_NOTICE, retention="forever")
    assert dataclasses.replace(policy, notice=changed).sha256 != policy.sha256
    assert dataclasses.replace(policy, notice=None).sha256 == DEFAULT_POLICY.sha256


def test_a_policy_signed_before_notices_still_verifies_installs_and_keeps_its_hash(
    tmp_path: Path,
) -> None:
    signed = read_signed_policy(OLD.read_bytes())
    assert signed.policy.notice is None
    assert signed.policy.sha256 == OLD_SHA256
    assert "notice" not in signed.policy.as_dict()
    paths = Paths(tmp_path / "home", tmp_path / "run")
    install_policy(paths, signed)
    assert active_policy(paths).sha256 == OLD_SHA256


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"controller": None, "purposes": []}, "controller name, controller contact, purposes"),
        ({"controller": {"name": "Example GmbH"}}, "controller contact"),
        ({"purposes": []}, "purposes"),
        ({"controller": {"name": " ", "contact": "x@example.com"}}, "controller name"),
    ],
)
def test_a_notice_without_controller_or_purposes_names_what_is_missing(
    change: dict[str, Any], missing: str
) -> None:
    with pytest.raises(UsageError, match=f"missing {missing}: people must know"):
        Policy.from_dict(with_notice(**change))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dpo": 42}, "'dpo'"),
        ({"recipients": "everyone"}, "'recipients'"),
        ({"retention": "24 months\u202e"}, "'retention'"),
        ({"retention": "24 months\x9b2J"}, "'retention'"),  # a C1 control: CSI
        ({"dpo": "dpo\u200b@example.com"}, "'dpo'"),  # zero-width space
        ({"recipients": None}, "'recipients'"),  # would read back as [], not as signed
        ({"no_performance_evaluation": "yes"}, "'no_performance_evaluation'"),
        ({"colour": "red"}, "unknown keys \\['colour'\\]"),
    ],
)
def test_a_bad_notice_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=field):
        Policy.from_dict(with_notice(**change))


def test_a_notice_lacking_an_optional_key_asks_for_null() -> None:
    data = with_notice()
    del data["notice"]["legal_basis"]
    with pytest.raises(UsageError, match="lacks \\['legal_basis'\\]; write null"):
        Policy.from_dict(data)
    data["notice"] = None
    with pytest.raises(UsageError, match="'notice' must be an object"):
        Policy.from_dict(data)


def test_the_built_in_policy_says_that_nothing_leaves_the_computer() -> None:
    assert DEFAULT_POLICY.notice is None
    assert DEFAULT_POLICY.collector is None
    assert "nothing leaves this computer" in DEFAULT_POLICY.purpose
    assert json.loads(json.dumps(DEFAULT_POLICY.as_dict())) == DEFAULT_POLICY.as_dict()


def test_what_leaves_says_how_key_timing_leaves() -> None:
    uploading = dataclasses.replace(DEFAULT_POLICY, collector="https://collector.example")
    (uploads,) = [f for f in facts(uploading) if f.key == "uploads"]
    assert "evened out" in uploads.text
    assert "unless you agree to 'Typing rhythm'" not in uploads.text  # not asked for
    asking = dataclasses.replace(uploading, categories=tuple(Category))
    (uploads,) = [f for f in facts(asking) if f.key == "uploads"]
    assert "unless you agree to 'Typing rhythm'" in uploads.text
    (nothing,) = [f for f in facts(DEFAULT_POLICY) if f.key == "uploads"]
    assert nothing.text == "Nothing."
