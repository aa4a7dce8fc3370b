"""The organisation's signed policy on the device: verify, install, the policy in force."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.actions.ledger import read_ledger
from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import (
    SIGNED_POLICY_TYPE,
    SignedPolicy,
    active_policy,
    install_policy,
    installed_policy,
    policy_file,
    read_signed_policy,
)
from cleartrace.consent.state import consent_from_records, give
from cleartrace.errors import HomeError, PolicyRefused
from cleartrace.formats import b64url, unb64url
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from cleartrace.service import Service


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One organisation's real keys, as 'cleartrace org keygen' writes them."""
    return generate(tmp_path_factory.mktemp("org") / "keys", "x25519")


@pytest.fixture(scope="module")
def other_org(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return generate(tmp_path_factory.mktemp("other") / "keys", "x25519")


def org_policy(org: Any, **options: Any) -> Policy:
    return new_policy(org.bundle_public, "https://collector.example", **options)


def signed(org: Any, **options: Any) -> SignedPolicy:
    return sign_policy(org_policy(org, **options), org.signing_private)


def edited(raw: bytes, change: Any) -> bytes:
    obj = json.loads(raw)
    change(obj)
    return json.dumps(obj, indent=2).encode()


def refused(raw: bytes, reason: str, **kwargs: Any) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as info:
        read_signed_policy(raw, **kwargs)
    assert info.value.reason == reason
    return info.value


# -- reading ------------------------------------------------------------------------


def test_a_signed_policy_reads_back_as_signed(org: Any) -> None:
    made = signed(org, keep_uploaded_days=7)
    read = read_signed_policy(made.raw)
    assert read.policy == made.policy
    assert read.policy.keep_uploaded_days == 7
    assert read.signer == org.signing_public.public_bytes_raw()
    assert read.fingerprint == "sha256:" + hashlib.sha256(read.signer).hexdigest()
    assert read.raw == made.raw


def test_the_signed_bytes_are_what_the_policy_hash_covers(org: Any) -> None:
    made = signed(org)
    obj = json.loads(made.raw)
    assert obj["type"] == SIGNED_POLICY_TYPE
    canonical = rfc8785.dumps(obj["policy"])
    assert hashlib.sha256(canonical).hexdigest() == made.policy.sha256
    org.signing_public.verify(unb64url(obj["signature"]), canonical)


def test_reformatting_the_file_keeps_the_signature_valid(org: Any) -> None:
    made = signed(org)
    compact = json.dumps(json.loads(made.raw), separators=(",", ":")).encode()
    assert read_signed_policy(compact).policy == made.policy


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("purpose", "Something else entirely."),
        ("hold_days", 0),
        ("collector", "https://elsewhere.example"),
        ("categories", ["keys"]),
        ("keep_uploaded_days", 0),
    ],
)
def test_a_field_changed_after_signing_is_refused_as_altered(
    org: Any, field: str, value: object
) -> None:
    raw = edited(signed(org).raw, lambda o: o["policy"].__setitem__(field, value))
    error = refused(raw, "altered")
    assert "altered after it was signed" in str(error)
    assert "org policy sign" in str(error)


def test_a_swapped_signer_is_refused_as_altered(org: Any, other_org: Any) -> None:
    other = b64url(other_org.signing_public.public_bytes_raw())
    raw = edited(signed(org).raw, lambda o: o.__setitem__("signer", other))
    refused(raw, "altered")


def test_a_damaged_signature_is_refused_as_altered(org: Any) -> None:
    raw = edited(signed(org).raw, lambda o: o.__setitem__("signature", "not*base64"))
    refused(raw, "altered")


def test_a_file_without_its_signature_is_refused_as_unsigned(org: Any) -> None:
    raw = edited(signed(org).raw, lambda o: o.pop("signature"))
    assert "not signed" in str(refused(raw, "unsigned"))


def test_a_bare_policy_is_refused_as_unsigned(org: Any) -> None:
    raw = json.dumps(org_policy(org).as_dict()).encode()
    error = refused(raw, "unsigned", source="policy.json")
    assert str(error).startswith("policy.json is not signed")
    assert "cleartrace org policy sign" in str(error)


def test_a_policy_signed_by_another_key_is_refused_when_a_signer_is_expected(
    org: Any, other_org: Any
) -> None:
    raw = signed(other_org).raw
    error = refused(raw, "wrong-signer", expect_signer=org.signing_public.public_bytes_raw())
    assert "signed by another key" in str(error)
    assert read_signed_policy(raw).signer == other_org.signing_public.public_bytes_raw()


@pytest.mark.parametrize(
    "raw",
    [
        b'["a", "list"]',
        b'{"type": "cleartrace-org-bundle-public-key", "suite": "x25519"}',
        b'{"hello": "world"}',
        b"42",
    ],
)
def test_something_else_is_not_a_policy_file(raw: bytes) -> None:
    assert "not a ClearTrace policy file" in str(refused(raw, "not-a-policy"))


def test_extra_top_level_fields_are_not_a_policy_file(org: Any) -> None:
    raw = edited(signed(org).raw, lambda o: o.__setitem__("note", "x"))
    refused(raw, "not-a-policy")


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: b"",
        lambda raw: b"\xff\xfe" + raw,
        lambda raw: raw.replace(b'"type"', b'"type": "x", "type"', 1),
        lambda raw: raw.replace(b'"hold_days": 3', b'"hold_days": NaN', 1),
    ],
    ids=["truncated", "empty", "not-utf8", "duplicate-key", "nan"],
)
def test_corrupt_json_is_refused_as_corrupt(org: Any, damage: Any) -> None:
    assert "not valid JSON" in str(refused(damage(signed(org).raw), "corrupt"))


def test_a_signed_but_invalid_policy_is_refused_naming_the_field(org: Any) -> None:
    data = {**org_policy(org).as_dict(), "hold_days": 99}
    key: Ed25519PrivateKey = org.signing_private
    raw = json.dumps(
        {
            "type": SIGNED_POLICY_TYPE,
            "policy": data,
            "signer": b64url(org.signing_public.public_bytes_raw()),
            "signature": b64url(key.sign(rfc8785.dumps(data))),
        }
    ).encode()
    assert "'hold_days'" in str(refused(raw, "invalid"))


def test_messages_carry_no_key_material(org: Any) -> None:
    raw = edited(signed(org).raw, lambda o: o["policy"].__setitem__("purpose", "x"))
    text = str(refused(raw, "altered"))
    obj = json.loads(raw)
    assert obj["signature"] not in text
    assert obj["signer"] not in text
    assert obj["policy"]["org_key"]["x25519"] not in text


# -- installing and the policy in force ------------------------------------------------


def test_without_an_installed_policy_the_default_is_in_force(private_home: Paths) -> None:
    assert installed_policy(private_home) is None
    assert active_policy(private_home) is DEFAULT_POLICY


def test_install_writes_the_file_0600_atomically(org: Any, private_home: Paths) -> None:
    made = signed(org)
    install_policy(private_home, made)
    path = policy_file(private_home)
    assert path == private_home.home / "policy.json"
    assert path.read_bytes() == made.raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in private_home.home.iterdir() if p.name.startswith(".")) == []
    assert active_policy(private_home) == made.policy


def test_install_verifies_the_bytes_it_writes(org: Any, private_home: Paths) -> None:
    made = signed(org)
    forged = SignedPolicy(
        policy=made.policy,
        signer=made.signer,
        raw=edited(made.raw, lambda o: o["policy"].__setitem__("hold_days", 0)),
    )
    with pytest.raises(PolicyRefused) as info:
        install_policy(private_home, forged)
    assert info.value.reason == "altered"
    assert not policy_file(private_home).exists()


def test_a_newer_version_from_the_same_signer_replaces_it(org: Any, private_home: Paths) -> None:
    install_policy(private_home, signed(org))
    install_policy(private_home, signed(org))  # the same again changes nothing
    newer = signed(org, version=2, hold_days=5)
    install_policy(private_home, newer)
    assert active_policy(private_home) == newer.policy


def test_a_policy_from_another_signer_is_refused_and_the_installed_one_kept(
    org: Any, other_org: Any, private_home: Paths
) -> None:
    first = signed(org)
    install_policy(private_home, first)
    with pytest.raises(PolicyRefused) as info:
        install_policy(private_home, signed(other_org, version=9))
    assert info.value.reason == "wrong-signer"
    assert "remove" in str(info.value)
    assert policy_file(private_home).read_bytes() == first.raw


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"version": 1}, "older"), ({"version": 2, "hold_days": 7}, "same-version")],
)
def test_an_older_or_silently_changed_policy_is_refused(
    org: Any, private_home: Paths, options: dict[str, Any], reason: str
) -> None:
    current = signed(org, version=2)
    install_policy(private_home, current)
    with pytest.raises(PolicyRefused) as info:
        install_policy(private_home, signed(org, **options))
    assert info.value.reason == reason
    assert active_policy(private_home) == current.policy


def test_a_tampered_installed_policy_raises_instead_of_falling_back(
    org: Any, private_home: Paths
) -> None:
    install_policy(private_home, signed(org))
    path = policy_file(private_home)
    path.write_bytes(edited(path.read_bytes(), lambda o: o["policy"].__setitem__("hold_days", 0)))
    with pytest.raises(PolicyRefused) as info:
        active_policy(private_home)
    assert info.value.reason == "altered"
    assert str(path) in str(info.value)
    assert "remove" in str(info.value)
    # nor can it be replaced while it does not verify
    with pytest.raises(PolicyRefused):
        install_policy(private_home, signed(org, version=2))


@pytest.mark.parametrize(("content", "reason"), [(b"", "corrupt"), (b"{}", "not-a-policy")])
def test_a_damaged_installed_policy_raises(
    private_home: Paths, content: bytes, reason: str
) -> None:
    private_home.home.mkdir(parents=True, exist_ok=True)
    policy_file(private_home).write_bytes(content)
    with pytest.raises(PolicyRefused) as info:
        active_policy(private_home)
    assert info.value.reason == reason


def test_an_installed_policy_that_is_a_symlink_is_refused(
    org: Any, private_home: Paths, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(signed(org).raw)
    private_home.home.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, policy_file(private_home))
    with pytest.raises(HomeError, match="symbolic link"):
        active_policy(private_home)


# -- consent under an organisation's policy ---------------------------------------------


def test_consent_given_under_an_installed_policy_names_it(
    org: Any, private_home: Paths, ledger: Ledger
) -> None:
    made = signed(org, policy_id="acme-workflows", version=4)
    install_policy(private_home, made)
    policy = active_policy(private_home)
    give(ledger, frozenset({Category.KEYS}), policy)
    (record,) = ledger.records()
    signed_text = json.loads(policy_file(private_home).read_bytes())["policy"]
    assert record["policy"] == {
        "id": "acme-workflows",
        "version": 4,
        "sha256": hashlib.sha256(rfc8785.dumps(signed_text)).hexdigest(),
    }


def test_the_tray_service_takes_the_installed_policy(org: Any, private_home: Paths) -> None:
    assert Service(private_home, env={}).policy is DEFAULT_POLICY
    made = signed(org)
    install_policy(private_home, made)
    assert Service(private_home, env={}).policy == made.policy


def test_the_cli_records_consent_under_the_installed_policy(
    org: Any, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    made = signed(org, policy_id="acme", version=2)
    install_policy(private_home, made)
    assert main(["consent", "give", "--category", "keys"]) == 0
    assert main(["consent", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["policy"] == made.policy.reference()


def test_withdrawal_goes_through_even_when_the_installed_policy_is_tampered(
    org: Any, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    install_policy(private_home, signed(org))
    assert main(["consent", "give", "--category", "keys"]) == 0
    path = policy_file(private_home)
    path.write_bytes(edited(path.read_bytes(), lambda o: o["policy"].__setitem__("hold_days", 0)))
    capsys.readouterr()
    assert main(["consent", "give", "--category", "clicks"]) == 2
    assert "altered after it was signed" in capsys.readouterr().err
    assert main(["consent", "withdraw", "--all"]) == 0
    assert "withdrawal is recorded anyway" in capsys.readouterr().err
    records = read_ledger(private_home)
    assert consent_from_records(records).granted() == frozenset()
    assert records[-1]["kind"] == "consent.withdrawn"
