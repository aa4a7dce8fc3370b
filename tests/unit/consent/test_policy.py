"""The default policy, its template file and its hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from cleartrace.categories import Category, PiiCategory
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.errors import UsageError

TEMPLATE = Path(__file__).parents[3] / "resources" / "policy" / "default-policy.json"

#: Every consent record names this hash. Changing the default policy's content
#: must come with a new version: update both numbers together, deliberately.
PINNED = (2, "7df129fa8fc9d7005ac28f3f14c36abe58fa176e74b3727f58528dce0c760bbc")


def template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    return data


def test_the_template_file_is_the_built_in_policy() -> None:
    assert Policy.from_dict(template()) == DEFAULT_POLICY
    assert hashlib.sha256(rfc8785.dumps(template())).hexdigest() == DEFAULT_POLICY.sha256


def test_the_default_policy_hash_changes_only_with_its_version() -> None:
    assert (DEFAULT_POLICY.version, DEFAULT_POLICY.sha256) == PINNED


def test_sha256_is_over_the_rfc8785_canonical_json() -> None:
    expected = hashlib.sha256(rfc8785.dumps(DEFAULT_POLICY.as_dict())).hexdigest()
    assert DEFAULT_POLICY.sha256 == expected
    assert DEFAULT_POLICY.reference() == {
        "id": "cleartrace-default",
        "version": 2,
        "sha256": expected,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"purpose": "Something else."},
        {"version": 3},
        {"categories": (Category.KEYS,)},
        {"mouse_move_hz": 60},
        {"hold_days": 0},
        {"exclusions": ("keepassxc",)},
        {"pii": (PiiCategory.EMAIL,)},
    ],
)
def test_every_field_changes_the_hash(change: dict[str, Any]) -> None:
    assert dataclasses.replace(DEFAULT_POLICY, **change).sha256 != DEFAULT_POLICY.sha256


def test_the_default_policy_asks_for_every_category() -> None:
    assert set(DEFAULT_POLICY.categories) == set(Category)


def test_mouse_rate_and_hold_period_have_defaults() -> None:
    policy = Policy("org", 1, "Why.", (Category.KEYS,))
    assert (policy.mouse_move_hz, policy.hold_days, policy.exclusions) == (120, 3, ())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "has space"}, "'id'"),
        ({"version": 0}, "'version'"),
        ({"version": "1"}, "'version'"),
        ({"purpose": " "}, "'purpose'"),
        ({"categories": ["keys", "screenshots"]}, "'categories'"),
        ({"categories": ["keys", "keys"]}, "'categories'"),
        ({"mouse_move_hz": 0}, "'mouse_move_hz'"),
        ({"hold_days": -1}, "'hold_days'"),
        ({"exclusions": ["KeePassXC"]}, "'exclusions'"),
        ({"pii": ["email", "shoe_size"]}, "'pii'"),
        ({"pii": ["email", "email"]}, "'pii'"),
        ({"colour": "red"}, "unknown \\['colour'\\]"),
    ],
)
def test_a_bad_policy_file_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=field):
        Policy.from_dict({**template(), **change})


def test_a_policy_missing_a_field_names_it() -> None:
    data = template()
    del data["hold_days"]
    with pytest.raises(UsageError, match="missing \\['hold_days'\\]"):
        Policy.from_dict(data)


def test_a_policy_must_be_an_object() -> None:
    with pytest.raises(UsageError, match="JSON object"):
        Policy.from_dict(["not", "a", "policy"])
