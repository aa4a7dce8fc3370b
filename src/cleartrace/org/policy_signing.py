"""Building and signing an organisation's policy file.

`init_policy` starts from the built-in default policy (the template in
`resources/policy/default-policy.json`), sets the collector URL, the
organisation's bundle key from `KEYS/bundle.pub` and its notice (who is
responsible, why, for how long: `policy_info.read_info` reads it from the
officer's TOML file, and a policy without one is refused), applies the
options given and signs the result with `KEYS/sign.key`. An organisation that wants to edit
more (exclusions, purpose wording, PII categories) edits the `policy` object
of that file and runs `sign_policy_file` on it; the old signature is dropped
and a new one made. The file format is described in
`cleartrace.consent.signed_policy`, which is also what verifies it.

Policy files are public (every device gets one), so they are written 0644,
atomically: a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import DEPENDS_ON, Category
from cleartrace.consent.notice import REQUIRED, Notice
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.consent.signed_policy import (
    MAX_POLICY_BYTES,
    SIGNED_POLICY_TYPE,
    SignedPolicy,
    read_signed_policy,
    signed_bytes,
)
from cleartrace.errors import UsageError
from cleartrace.formats import b64url, unb64url, verify_ed25519
from cleartrace.org.keys import load_private
from cleartrace.paths import read_input, write_private_bytes
from cleartrace.suites import OrgPublicKey

__all__ = [
    "DEFAULT_ORG_POLICY_ID",
    "ORG_PURPOSE",
    "init_policy",
    "new_policy",
    "sign_policy",
    "sign_policy_file",
    "verify_policy_file",
]

log = logging.getLogger(__name__)

#: The id of a new organisation policy unless one is given: not the built-in
#: default's, so a consent record never names the default for another text.
DEFAULT_ORG_POLICY_ID = "org-policy"
#: The purpose of a new organisation policy unless one is given: the built-in
#: policy's says that nothing leaves the computer, which is not so here.
ORG_PURPOSE = (
    "Record how work is done at this computer (keys, mouse, focused application) "
    "to train AI models on real workflows. Only the categories you consent to are "
    "recorded; you can pause, review, delete and withdraw at any time."
)


def sign_policy(policy: Policy, key: Ed25519PrivateKey) -> SignedPolicy:
    """Sign `policy` with the organisation's signing key; the file's bytes are in `.raw`.

    The file is indented JSON for people to read; the signature is over the
    canonical bytes, so the indentation does not matter to a verifier.
    """
    signer = key.public_key().public_bytes_raw()
    obj = {
        "type": SIGNED_POLICY_TYPE,
        "policy": policy.as_dict(),
        "signer": b64url(signer),
        "signature": b64url(key.sign(signed_bytes(policy))),
    }
    raw = (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return SignedPolicy(policy=policy, signer=signer, raw=raw)


def new_policy(
    org_key: OrgPublicKey,
    collector: str,
    *,
    policy_id: str = DEFAULT_ORG_POLICY_ID,
    version: int = 1,
    purpose: str | None = None,
    categories: Iterable[Category] | None = None,
    hold_days: int | None = None,
    hold_days_min: int | None = None,
    hold_days_max: int | None = None,
    keep_uploaded_days: int | None = None,
    notice: Notice | None = None,
    report_min_group: int | None = None,
) -> Policy:
    """The default policy with this organisation's collector, key and choices.

    An option left None keeps the default's value; `hold_days` left None is
    the default's, moved into the bounds when they exclude it; `report_min_group`
    left None is left out of the policy (an audit report then uses 5).

    Raises:
        UsageError: a value is not valid for a policy (the message names it),
            or `window_titles` is asked for without `app_focus`.
    """
    data: dict[str, Any] = DEFAULT_POLICY.as_dict()
    data.update(id=policy_id, version=version, collector=collector, org_key=org_key.as_json())
    data["purpose"] = ORG_PURPOSE if purpose is None else purpose
    if notice is not None:
        data["notice"] = notice.as_dict()
    if categories is not None:
        chosen = set(categories)
        for needs, base in DEPENDS_ON.items():
            if needs in chosen and base not in chosen:
                raise UsageError(
                    f"the policy asks for '{needs.value}' but not '{base.value}', which it "
                    f"needs; add '{base.value}'"
                )
        data["categories"] = [c.value for c in Category if c in chosen]
    for name, value in (
        ("hold_days_min", hold_days_min),
        ("hold_days_max", hold_days_max),
        ("keep_uploaded_days", keep_uploaded_days),
        ("report_min_group", report_min_group),
    ):
        if value is not None:
            data[name] = value
    if hold_days is not None:
        data["hold_days"] = hold_days
    elif type(data["hold_days_min"]) is int and type(data["hold_days_max"]) is int:
        low, high = data["hold_days_min"], data["hold_days_max"]
        data["hold_days"] = min(max(data["hold_days"], low), high)
    return Policy.from_dict(data)


def _write_public(out: Path, raw: bytes) -> None:
    write_private_bytes(out, raw, "policy file")
    os.chmod(out, 0o644)  # public: every device gets a copy


def init_policy(
    keys_dir: Path, collector: str, out: Path, *, notice: Notice | None, **options: Any
) -> SignedPolicy:
    """Create and sign a new policy for the keys in `keys_dir`; write it to `out`.

    `notice` is what people are told before agreeing (`policy_info.read_info`
    reads it from the officer's file); `options` are those of `new_policy`.

    Raises:
        UsageError: `notice` is None (people could not know who is
            responsible or why), `out` exists already (an edited policy is not
            overwritten: sign it with `sign_policy_file`), or an option is not
            valid.
        KeyStorageError: the keys cannot be loaded.
        DiskFull: no room for the file.
    """
    if notice is None:
        raise UsageError(
            f"a policy must tell people who is responsible and why: {', '.join(REQUIRED)} "
            "are missing; write them in a TOML file and pass --info FILE "
            "(docs/policy-format.md shows one)"
        )
    if out.exists():
        raise UsageError(
            f"{out} exists already; edit it and sign it with 'cleartrace org policy sign', "
            "or choose another --out"
        )
    keys = load_private(keys_dir)
    policy = new_policy(keys.bundle_public, collector, notice=notice, **options)
    signed = sign_policy(policy, keys.signing_private)
    _write_public(out, signed.raw)
    return signed


def _read_source(src: Path) -> object:
    raw = read_input(src, MAX_POLICY_BYTES)
    if len(raw) > MAX_POLICY_BYTES:
        raise UsageError(f"{src} is larger than {MAX_POLICY_BYTES} bytes: not a policy")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"{src} is not valid JSON; fix the syntax and sign it again") from None


def sign_policy_file(keys_dir: Path, src: Path, out: Path) -> SignedPolicy:
    """Sign the policy in `src` (a bare policy object, or a signed file whose
    `policy` was edited) with the keys in `keys_dir`; write it to `out`.

    `out` may be `src`: the new file replaces it atomically.

    Raises:
        UsageError: `src` is unreadable or not a valid policy (the message
            names the field), has no notice (as `init_policy`), or its
            `org_key` is not this key set's bundle key.
        KeyStorageError: the keys cannot be loaded.
        DiskFull: no room for the file.
    """
    obj = _read_source(src)
    previous: dict[str, Any] | None = None
    if isinstance(obj, dict) and obj.get("type") == SIGNED_POLICY_TYPE:
        previous, obj = obj, obj.get("policy")
    try:
        policy = Policy.from_dict(obj)
    except UsageError as exc:
        raise UsageError(f"{src}: {exc}") from None
    if policy.notice is None:
        raise UsageError(
            f"{src}: the policy has no 'notice': people must know the {', '.join(REQUIRED)} "
            "before they agree; add it (docs/policy-format.md)"
        )
    keys = load_private(keys_dir)
    if policy.org_key is not None and policy.org_key != keys.bundle_public:
        raise UsageError(
            f"{src}: 'org_key' ({policy.org_key.fingerprint}) is not the bundle key in "
            f"{keys_dir} ({keys.bundle_public.fingerprint}); uploads would be sealed to a key "
            "these keys cannot open: copy bundle.pub into 'org_key'"
        )
    signed = sign_policy(policy, keys.signing_private)
    if previous is not None:
        _warn_on_resign(src, previous, signed, keys.signing_private)
    _write_public(out, signed.raw)
    return signed


def _warn_on_resign(
    src: Path, previous: dict[str, Any], signed: SignedPolicy, key: Ed25519PrivateKey
) -> None:
    """Say what devices will make of a re-signed policy; changes nothing."""
    if previous.get("signer") != b64url(signed.signer):
        log.warning(
            "%s was signed by another key; devices that installed it refuse this one "
            "(now signed by %s)",
            src,
            signed.fingerprint,
        )
        return
    try:
        unchanged = verify_ed25519(
            key.public_key(), unb64url(previous.get("signature", "")), signed_bytes(signed.policy)
        )
    except ValueError:  # the previous signature is not base64url
        unchanged = False
    if not unchanged:
        log.warning(
            "%s: the policy changed since it was signed; devices refuse a changed policy "
            "under the version they have: make sure 'version' (now %d) is higher",
            src,
            signed.policy.version,
        )


def verify_policy_file(path: Path) -> SignedPolicy:
    """Read and verify the signed policy file `path`.

    Raises:
        UsageError: `path` cannot be read.
        PolicyRefused: it is not a validly signed policy (`reason` says why).
    """
    return read_signed_policy(read_input(path, MAX_POLICY_BYTES), source=str(path))
