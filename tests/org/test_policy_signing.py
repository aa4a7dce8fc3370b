"""Building and signing the organisation's policy file, with real keys and files."""

from __future__ import annotations

import hashlib
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category, PiiCategory
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import read_signed_policy, signed_bytes
from cleartrace.errors import KeyStorageError, PolicyRefused, UsageError
from cleartrace.formats import b64url
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import (
    DEFAULT_ORG_POLICY_ID,
    ORG_PURPOSE,
    init_policy,
    sign_policy,
    sign_policy_file,
    verify_policy_file,
)
from cleartrace.suites import OrgPublicKey
from tests.support.notice import EXAMPLE_NOTICE

COLLECTOR = "https://collector.example:8443"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("org") / "keys"
    generate(out, "x25519")
    return out


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other") / "keys"
    generate(out, "x25519")
    return out


def signed_file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


# -- a known answer ---------------------------------------------------------------------

KAT_CANONICAL = (
    '{"categories":["keys","clicks"],"collector":"https://collector.example",'
    '"exclusions":["keepassxc"],"hold_days":3,"hold_days_max":7,"hold_days_min":1,'
    '"id":"kat","keep_uploaded_days":0,"mouse_move_hz":120,"org_key":{"fingerprint":'
    '"sha256:9db4941359e69208ebc96085dfe2f5aa73b203ff4fb4049b77b53e4a06a268be",'
    '"suite":"x25519","type":"cleartrace-org-bundle-public-key",'
    '"x25519":"NYBy1jZYgNGu6jKa35EhODhR7SGijjt16WXQ0s0WYlQ"},"pii":["email"],'
    '"purpose":"Known answer.","version":1}'
)
KAT_SIGNER = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
KAT_SIGNATURE = (
    "teAihp4vG1PJnTA521tPOig8vSOadcFAONxBPoMHvQQd8gyQDdYyUCoIBpBmZGBbuQkPxNizd9-VQ1pw9N-nBg"
)


def test_signing_a_fixed_policy_with_a_fixed_key_gives_the_known_answer() -> None:
    # Ed25519 is deterministic: fixed key + fixed policy = fixed signature.
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    bundle = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32, 64))).public_key()
    policy = Policy(
        "kat",
        1,
        "Known answer.",
        (Category.KEYS, Category.CLICKS),
        exclusions=("keepassxc",),
        pii=(PiiCategory.EMAIL,),
        collector="https://collector.example",
        org_key=OrgPublicKey.from_keys(bundle, None),
        hold_days_min=1,
        hold_days_max=7,
        keep_uploaded_days=0,
    )
    assert signed_bytes(policy) == KAT_CANONICAL.encode()
    assert policy.sha256 == hashlib.sha256(KAT_CANONICAL.encode()).hexdigest()
    made = sign_policy(policy, key)
    obj = json.loads(made.raw)
    assert (obj["type"], obj["signer"], obj["signature"]) == (
        "cleartrace-signed-policy",
        KAT_SIGNER,
        KAT_SIGNATURE,
    )
    assert read_signed_policy(made.raw).policy == policy


# -- init -------------------------------------------------------------------------------


def test_init_writes_a_signed_default_policy_for_this_collector_and_key(
    keys_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "policy.json"
    made = init_policy(keys_dir, COLLECTOR, out, notice=EXAMPLE_NOTICE)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["policy.json"]  # no temporary left
    read = read_signed_policy(out.read_bytes())
    assert read.policy == made.policy
    assert read.fingerprint == json.loads((keys_dir / "sign.pub").read_text())["fingerprint"]
    obj = signed_file(out)["policy"]
    assert obj["org_key"] == json.loads((keys_dir / "bundle.pub").read_text())
    assert obj["collector"] == COLLECTOR
    assert (obj["id"], obj["version"]) == (DEFAULT_ORG_POLICY_ID, 1)
    for same in ("categories", "exclusions", "pii", "hold_days", "mouse_move_hz"):
        assert obj[same] == DEFAULT_POLICY.as_dict()[same]
    # Not the built-in purpose: that one says nothing leaves the computer.
    assert obj["purpose"] == ORG_PURPOSE
    assert "nothing leaves" not in obj["purpose"]
    assert obj["notice"] == EXAMPLE_NOTICE.as_dict()
    assert hashlib.sha256(rfc8785.dumps(obj)).hexdigest() == read.policy.sha256


def test_init_applies_the_options(keys_dir: Path, tmp_path: Path) -> None:
    made = init_policy(
        keys_dir,
        COLLECTOR,
        tmp_path / "p.json",
        policy_id="acme",
        version=5,
        purpose="Train the support assistant.",
        categories=[Category.KEYS, Category.APP_FOCUS, Category.WINDOW_TITLES],
        hold_days=2,
        hold_days_min=1,
        hold_days_max=10,
        keep_uploaded_days=0,
        notice=EXAMPLE_NOTICE,
    )
    p = made.policy
    assert (p.id, p.version, p.purpose) == ("acme", 5, "Train the support assistant.")
    assert p.categories == (Category.KEYS, Category.APP_FOCUS, Category.WINDOW_TITLES)
    assert (p.hold_days, p.hold_days_min, p.hold_days_max) == (2, 1, 10)
    assert p.keep_uploaded_days == 0


def test_init_moves_the_default_hold_period_into_narrower_bounds(
    keys_dir: Path, tmp_path: Path
) -> None:
    made = init_policy(
        keys_dir, COLLECTOR, tmp_path / "p.json", hold_days_max=1, notice=EXAMPLE_NOTICE
    )
    assert (made.policy.hold_days, made.policy.hold_days_max) == (1, 1)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"categories": [Category.WINDOW_TITLES]}, "'app_focus'"),
        ({"hold_days": 20}, "'hold_days'"),
        ({"policy_id": "no spaces please"}, "'id'"),
        ({"version": 0}, "'version'"),
    ],
)
def test_init_refuses_a_bad_option_naming_it(
    keys_dir: Path, tmp_path: Path, options: dict[str, Any], match: str
) -> None:
    out = tmp_path / "p.json"
    with pytest.raises(UsageError, match=match):
        init_policy(keys_dir, COLLECTOR, out, **options, notice=EXAMPLE_NOTICE)
    assert not out.exists()


@pytest.mark.parametrize("url", ["ftp://collector.example", "collector.example", "https://"])
def test_init_refuses_a_collector_that_is_not_an_http_url(
    keys_dir: Path, tmp_path: Path, url: str
) -> None:
    with pytest.raises(UsageError, match="'collector'"):
        init_policy(keys_dir, url, tmp_path / "p.json", notice=EXAMPLE_NOTICE)


def test_init_does_not_overwrite_a_policy(keys_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    out.write_text("edited by hand")
    with pytest.raises(UsageError, match="exists already"):
        init_policy(keys_dir, COLLECTOR, out, notice=EXAMPLE_NOTICE)
    assert out.read_text() == "edited by hand"


def test_init_without_keys_says_where_they_were_expected(tmp_path: Path) -> None:
    with pytest.raises(KeyStorageError, match="org keygen"):
        init_policy(tmp_path / "nokeys", COLLECTOR, tmp_path / "p.json", notice=EXAMPLE_NOTICE)


def test_a_hybrid_key_goes_into_the_policy_too(tmp_path: Path) -> None:
    keys = generate(tmp_path / "keys")
    made = init_policy(tmp_path / "keys", COLLECTOR, tmp_path / "p.json", notice=EXAMPLE_NOTICE)
    assert made.policy.org_key == keys.bundle_public
    assert made.policy.org_key is not None
    assert made.policy.org_key.suite == "mlkem768-x25519"
    assert read_signed_policy(made.raw).policy == made.policy


# -- sign -------------------------------------------------------------------------------


def test_sign_signs_an_edited_bare_policy(keys_dir: Path, tmp_path: Path) -> None:
    made = init_policy(keys_dir, COLLECTOR, tmp_path / "first.json", notice=EXAMPLE_NOTICE)
    bare = {**made.policy.as_dict(), "version": 2, "exclusions": ["keepassxc", "zenity"]}
    src = tmp_path / "edited.json"
    src.write_text(json.dumps(bare, indent=2))
    out = tmp_path / "signed.json"
    again = sign_policy_file(keys_dir, src, out)
    assert read_signed_policy(out.read_bytes()).policy == again.policy
    assert again.policy.exclusions == ("keepassxc", "zenity")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_sign_re_signs_a_signed_file_edited_in_place(keys_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    init_policy(keys_dir, COLLECTOR, path, notice=EXAMPLE_NOTICE)
    obj = signed_file(path)
    obj["policy"]["purpose"] = "A new purpose."
    obj["policy"]["version"] = 2
    path.write_text(json.dumps(obj, indent=2))
    with pytest.raises(PolicyRefused, match="altered"):
        verify_policy_file(path)
    sign_policy_file(keys_dir, path, path)
    assert verify_policy_file(path).policy.purpose == "A new purpose."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]


def test_re_signing_an_edit_without_a_new_version_warns(
    keys_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.json"
    init_policy(keys_dir, COLLECTOR, path, notice=EXAMPLE_NOTICE)
    obj = signed_file(path)
    obj["policy"]["hold_days"] = 1
    path.write_text(json.dumps(obj))
    with caplog.at_level(logging.WARNING, logger="cleartrace.org.policy_signing"):
        sign_policy_file(keys_dir, path, path)
    assert "'version' (now 1) is higher" in caplog.text


def test_re_signing_with_another_key_set_warns_that_devices_refuse_it(
    keys_dir: Path, other_keys: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.json"
    init_policy(keys_dir, COLLECTOR, path, notice=EXAMPLE_NOTICE)
    obj = signed_file(path)
    obj["policy"]["org_key"] = json.loads((other_keys / "bundle.pub").read_text())
    path.write_text(json.dumps(obj))
    with caplog.at_level(logging.WARNING, logger="cleartrace.org.policy_signing"):
        made = sign_policy_file(other_keys, path, tmp_path / "other.json")
    assert "signed by another key" in caplog.text
    assert made.fingerprint == json.loads((other_keys / "sign.pub").read_text())["fingerprint"]


def test_sign_refuses_an_org_key_these_keys_cannot_open(
    keys_dir: Path, other_keys: Path, tmp_path: Path
) -> None:
    src = tmp_path / "p.json"
    init_policy(keys_dir, COLLECTOR, src, notice=EXAMPLE_NOTICE)
    out = tmp_path / "out.json"
    with pytest.raises(UsageError, match=r"'org_key'.*is not the bundle key"):
        sign_policy_file(other_keys, src, out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"id": "x"', "not valid JSON"),
        ('{"id": "x"}', "policy fields wrong"),
        ('["policy"]', "JSON object"),
    ],
)
def test_sign_refuses_what_is_not_a_valid_policy(
    keys_dir: Path, tmp_path: Path, content: str, match: str
) -> None:
    src = tmp_path / "p.json"
    src.write_text(content)
    with pytest.raises(UsageError, match=match):
        sign_policy_file(keys_dir, src, tmp_path / "out.json")


def test_sign_names_a_missing_input_file(keys_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        sign_policy_file(keys_dir, tmp_path / "missing.json", tmp_path / "out.json")


def test_a_policy_signed_by_hand_elsewhere_verifies_here(tmp_path: Path) -> None:
    """The format is plain: any Ed25519 + RFC 8785 implementation can make it."""
    key = Ed25519PrivateKey.generate()
    policy = DEFAULT_POLICY.as_dict()
    obj = {
        "signature": b64url(key.sign(rfc8785.dumps(policy))),
        "policy": policy,
        "type": "cleartrace-signed-policy",
        "signer": b64url(key.public_key().public_bytes_raw()),
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(obj))
    assert verify_policy_file(path).policy == DEFAULT_POLICY


def test_sign_refuses_a_policy_without_a_notice(keys_dir: Path, tmp_path: Path) -> None:
    """Signing is no way around init's rule: people learn who and why before agreeing."""
    made = init_policy(keys_dir, COLLECTOR, tmp_path / "first.json", notice=EXAMPLE_NOTICE)
    bare = made.policy.as_dict()
    del bare["notice"]
    src = tmp_path / "edited.json"
    src.write_text(json.dumps(bare))
    out = tmp_path / "signed.json"
    with pytest.raises(UsageError, match=rf"{src}: .*no 'notice'.*controller.*purposes"):
        sign_policy_file(keys_dir, src, out)
    assert not out.exists()
