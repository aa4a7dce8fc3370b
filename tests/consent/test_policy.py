"""The default policy, its template file and its hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from cleartrace.categories import Category, PiiCategory
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.errors import UsageError
from cleartrace.suites import OrgPublicKey
from tests.support import REPO

TEMPLATE = REPO / "resources" / "policy" / "default-policy.json"

#: Every consent record names this hash. Changing the default policy's content
#: must come with a new version: update both numbers together, deliberately.
PINNED = (4, "27a5b4d5859937aec0b8113d67ee37a23eb8eb9b6dc178d7b54bc55a182bf152")


ORG_KEY = OrgPublicKey.from_keys(x25519.X25519PrivateKey.generate().public_key(), None)
HYBRID_KEY = OrgPublicKey.from_keys(
    x25519.X25519PrivateKey.generate().public_key(),
    mlkem.MLKEM768PrivateKey.generate().public_key(),
)


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
        "version": 4,
        "sha256": expected,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"purpose": "Something else."},
        {"version": 5},
        {"categories": (Category.KEYS,)},
        {"mouse_move_hz": 60},
        {"hold_days": 0},
        {"exclusions": ("keepassxc",)},
        {"pii": (PiiCategory.EMAIL,)},
        {"collector": "https://collector.example"},
        {"org_key": ORG_KEY},
        {"hold_days_min": 1},
        {"hold_days_max": 7},
        {"keep_uploaded_days": 0},
    ],
)
def test_every_field_changes_the_hash(change: dict[str, Any]) -> None:
    assert dataclasses.replace(DEFAULT_POLICY, **change).sha256 != DEFAULT_POLICY.sha256


def test_the_default_policy_asks_for_every_category_but_typing_rhythm() -> None:
    assert set(DEFAULT_POLICY.categories) == set(Category) - {Category.TYPING_RHYTHM}


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
        ({"auto_redact": ["email", "shoe_size"]}, "'auto_redact'"),
        ({"auto_redact": ["phone", "phone"]}, "'auto_redact'"),
        ({"auto_redact": "email"}, "'auto_redact'"),
        ({"report_min_group": 1}, "'report_min_group'.*2 to 1000"),
        ({"report_min_group": 1001}, "'report_min_group'"),
        ({"report_min_group": "5"}, "'report_min_group'"),
        ({"report_min_group": True}, "'report_min_group'"),
        ({"report_min_group": None}, "'report_min_group'"),
        ({"colour": "red"}, "unknown \\['colour'\\]"),
        ({"hold_days": 15}, "'hold_days'.*0 to 14"),
        ({"hold_days_min": 4}, "'hold_days'.*4 to 14"),
        ({"hold_days_max": 2}, "'hold_days'.*0 to 2"),
        ({"hold_days_min": 5, "hold_days_max": 4, "hold_days": 4}, "'hold_days_max'"),
        ({"hold_days_min": -1}, "'hold_days_min'"),
        ({"hold_days_max": 366}, "'hold_days_max'"),
        ({"keep_uploaded_days": -1}, "'keep_uploaded_days'"),
        ({"keep_uploaded_days": 1.5}, "'keep_uploaded_days'"),
        ({"collector": "ftp://collector.example"}, "'collector'"),
        ({"collector": "collector.example"}, "'collector'"),
        ({"collector": "https://"}, "'collector'"),
        ({"collector": 42}, "'collector'"),
        ({"collector": " https://collector.example"}, "'collector'"),
        ({"collector": "https://user:pw@collector.example"}, "'collector'.*password"),
        ({"collector": "https://collector.example/?token=1"}, "'collector'.*query"),
        ({"collector": "https://collector.example:99999"}, "'collector'"),
        ({"org_key": {"type": "something"}}, "'org_key'"),
        ({"org_key": "sha256:00"}, "'org_key'"),
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


def test_an_org_policy_round_trips_to_the_json_it_was_made_of() -> None:
    for key in (ORG_KEY, HYBRID_KEY):
        data = {
            **template(),
            "collector": "https://collector.example:8443/ct",
            "org_key": key.as_json(),
            "hold_days_min": 1,
            "hold_days_max": 30,
            "hold_days": 30,
            "keep_uploaded_days": 0,
        }
        policy = Policy.from_dict(data)
        assert policy.org_key == key
        assert policy.as_dict() == data
        assert policy.sha256 == hashlib.sha256(rfc8785.dumps(data)).hexdigest()


def test_what_leaves_without_detected_personal_data_is_every_kind_unless_the_policy_says() -> None:
    # A policy signed before `auto_redact` existed keeps its hash and withholds every kind.
    old = Policy.from_dict(template())
    assert "auto_redact" not in old.as_dict()
    assert old.sha256 == DEFAULT_POLICY.sha256
    assert old.withheld == tuple(PiiCategory)
    emails = {**template(), "auto_redact": ["email"], "pii": ["phone"]}
    chosen = Policy.from_dict(emails)
    assert chosen.as_dict() == emails
    assert chosen.withheld == (PiiCategory.EMAIL,)
    # Review searches what it flags and what is withheld, so it shows both.
    assert chosen.detected == (PiiCategory.EMAIL, PiiCategory.PHONE)
    assert Policy.from_dict({**template(), "auto_redact": []}).withheld == ()


def test_the_reports_least_group_is_five_unless_the_policy_says() -> None:
    # Absent, it leaves the bytes and hash of a policy signed before it existed.
    old = Policy.from_dict(template())
    assert "report_min_group" not in old.as_dict()
    assert old.sha256 == DEFAULT_POLICY.sha256
    assert old.min_group == 5
    data = {**template(), "report_min_group": 12}
    chosen = Policy.from_dict(data)
    assert chosen.as_dict() == data
    assert chosen.min_group == 12
    assert chosen.sha256 == hashlib.sha256(rfc8785.dumps(data)).hexdigest() != old.sha256


def test_a_collector_on_this_machine_may_use_plain_http() -> None:
    data = {**template(), "collector": "http://127.0.0.1:8080", "org_key": ORG_KEY.as_json()}
    assert Policy.from_dict(data).collector == "http://127.0.0.1:8080"


def test_a_collector_without_an_org_key_is_refused() -> None:
    with pytest.raises(UsageError, match="'org_key' is null but 'collector' is set"):
        Policy.from_dict({**template(), "collector": "https://collector.example"})


def test_an_org_key_whose_fingerprint_does_not_match_is_refused() -> None:
    key = ORG_KEY.as_json()
    other = OrgPublicKey.from_keys(x25519.X25519PrivateKey.generate().public_key(), None)
    key["fingerprint"] = other.fingerprint
    with pytest.raises(UsageError, match=r"'org_key'.*fingerprint"):
        Policy.from_dict({**template(), "org_key": key})


def test_an_org_key_with_an_extra_field_is_refused() -> None:
    key = {**ORG_KEY.as_json(), "note": "ours"}
    with pytest.raises(UsageError, match="'org_key'"):
        Policy.from_dict({**template(), "org_key": key})


def test_the_default_policy_uploads_nothing_and_keeps_uploaded_sessions() -> None:
    assert (DEFAULT_POLICY.collector, DEFAULT_POLICY.org_key) == (None, None)
    assert (DEFAULT_POLICY.hold_days_min, DEFAULT_POLICY.hold_days_max) == (0, 14)
    assert DEFAULT_POLICY.keep_uploaded_days is None
