"""An organisation's signed policy on the device: read, verify, install, and the
policy in force.

The file `cleartrace org policy init|sign` writes::

    {"type": "cleartrace-signed-policy",
     "policy": {...every field of Policy.as_dict()...},
     "signer": "<base64url raw Ed25519 public key of the organisation>",
     "signature": "<base64url Ed25519 over the RFC 8785 canonical bytes of 'policy'>"}

The policy object, its optional `notice` and how formats evolve are in
docs/policy-format.md. The signature covers the canonical bytes of `policy`,
not the file's bytes, so the file may be indented for people to read. Because
`Policy.from_dict(d).as_dict() == d`, the signed bytes are the bytes `Policy.sha256` hashes: what
a consent record names is exactly what the organisation signed.

Trust is pinned on first use, as SSH pins host keys: the first policy installed
names its signer, and a replacement must be signed by the same key, must not
be older (a lower `version` of the same `id`) and must not change the text
under the same version (consent records would then name two texts alike).
The installed file is verified again on every load; a file altered on disk is
refused, never replaced by the built-in default in silence, because the
default names no collector and other retention: a person would record under
terms nobody chose.

`PolicyRefused.reason` is one of: "corrupt" (not JSON), "not-a-policy",
"unsigned", "altered" (the signature does not verify), "wrong-signer",
"invalid" (signed, but not a valid policy), "older", "same-version".
"""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.errors import HomeError, PolicyRefused, UsageError
from cleartrace.formats import canonical, key_fingerprint, unb64url, verify_ed25519
from cleartrace.paths import Paths, ensure_private_dirs, write_private_bytes

__all__ = [
    "MAX_POLICY_BYTES",
    "SIGNED_POLICY_TYPE",
    "SignedPolicy",
    "active_policy",
    "check_installable",
    "install_policy",
    "installed_policy",
    "policy_file",
    "read_signed_policy",
    "signed_bytes",
]

log = logging.getLogger(__name__)

SIGNED_POLICY_TYPE = "cleartrace-signed-policy"
#: A policy is a few kilobytes; anything far larger is not one (and is not parsed).
MAX_POLICY_BYTES = 1 << 20
_FIELDS = frozenset({"type", "policy", "signer", "signature"})
_POLICY_FILE = "policy.json"


def policy_file(paths: Paths) -> Path:
    """Where the installed signed policy lives: `<home>/policy.json`."""
    return paths.home / _POLICY_FILE


def signed_bytes(policy: Policy) -> bytes:
    """The bytes a policy signature covers: RFC 8785 canonical JSON of `as_dict()`."""
    return canonical(policy.as_dict())


@dataclass(frozen=True, slots=True)
class SignedPolicy:
    """A verified policy file: the policy, the raw public key that signed it, the file's bytes."""

    policy: Policy
    signer: bytes
    raw: bytes

    @property
    def fingerprint(self) -> str:
        """The signer's fingerprint, as `cleartrace org keygen` prints it."""
        return key_fingerprint(self.signer)


def _refuse(source: str, problem: str, fix: str, reason: str) -> NoReturn:
    raise PolicyRefused(f"{source} {problem}; {fix}", reason)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key would let a reader see one and the verifier another.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key appears twice")
    return obj


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse(raw: bytes, source: str, fix: str) -> object:
    try:
        return json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        _refuse(source, "is not valid JSON (damaged or cut short)", fix, "corrupt")


def read_signed_policy(
    raw: bytes,
    *,
    expect_signer: bytes | None = None,
    source: str = "the policy file",
    fix: str | None = None,
) -> SignedPolicy:
    """Verify a signed policy file and return its policy.

    `expect_signer` (a raw Ed25519 public key) refuses a file signed by any
    other key. `source` names the file in messages; `fix` replaces the advice
    they end with.

    Raises:
        PolicyRefused: not JSON, not a policy file, unsigned, altered after
            signing, signed by another key than `expect_signer`, or signed but
            not a valid policy; `reason` says which.
    """
    get_file = fix or "ask your organisation for its signed policy file"
    if len(raw) > MAX_POLICY_BYTES:
        _refuse(
            source, f"is larger than {MAX_POLICY_BYTES} bytes: not a policy", get_file, "corrupt"
        )
    obj = _parse(raw, source, fix or "download the signed policy again from your organisation")
    if not isinstance(obj, dict):
        _refuse(source, "is not a ClearTrace policy file", get_file, "not-a-policy")
    if obj.get("type") != SIGNED_POLICY_TYPE:
        if "type" not in obj and {"id", "version", "purpose"} <= set(obj):
            _refuse(
                source,
                "is not signed: a device takes only a policy its organisation signed",
                fix
                or "sign it with 'cleartrace org policy sign --keys KEYS --in FILE --out POLICY', "
                "or ask your organisation for the signed file",
                "unsigned",
            )
        _refuse(source, "is not a ClearTrace policy file", get_file, "not-a-policy")
    if obj.get("signature") in (None, "") or obj.get("signer") in (None, ""):
        _refuse(
            source,
            "is not signed (it has no signature)",
            fix or "sign it again with 'cleartrace org policy sign'",
            "unsigned",
        )
    if set(obj) != _FIELDS:
        _refuse(
            source,
            f"has other fields than {', '.join(sorted(_FIELDS))}: not a policy file",
            get_file,
            "not-a-policy",
        )
    altered_fix = fix or (
        "get the original file from your organisation, or sign the edited policy again "
        "with 'cleartrace org policy sign'"
    )
    try:
        signer = unb64url(obj["signer"])
        signature = unb64url(obj["signature"])
        if len(signer) != 32 or len(signature) != 64:
            raise ValueError("length")
        message = canonical(obj["policy"])
    except (ValueError, TypeError):
        _refuse(
            source, "was altered after it was signed (damaged signature)", altered_fix, "altered"
        )
    if not verify_ed25519(signer, signature, message):
        _refuse(
            source,
            "was altered after it was signed (the signature does not verify)",
            altered_fix,
            "altered",
        )
    if expect_signer is not None and signer != expect_signer:
        _refuse(
            source,
            f"is signed by another key ({key_fingerprint(signer)}) than expected "
            f"({key_fingerprint(expect_signer)})",
            fix or "check that this is your organisation's policy file",
            "wrong-signer",
        )
    try:
        policy = Policy.from_dict(obj["policy"])
    except UsageError as exc:
        _refuse(source, f"is signed but not a valid policy ({exc})", get_file, "invalid")
    return SignedPolicy(policy=policy, signer=signer, raw=raw)


def _read_installed(path: Path) -> bytes | None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise HomeError(
                f"the installed policy {path} is a symbolic link; remove it and enrol again"
            ) from exc
        raise HomeError(
            f"cannot read the installed policy {path} ({exc.strerror}); "
            "check the home directory's permissions"
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        return fh.read(MAX_POLICY_BYTES + 1)


def installed_policy(paths: Paths) -> SignedPolicy | None:
    """The installed signed policy, verified now; None when none is installed.

    Raises:
        PolicyRefused: the installed file does not verify (altered, damaged).
        HomeError: it cannot be read, or is a symbolic link.
    """
    path = policy_file(paths)
    raw = _read_installed(path)
    if raw is None:
        return None
    return read_signed_policy(
        raw,
        source=f"the installed policy {path}",
        fix=(
            f"nothing is recorded under it: remove {path} and install your organisation's "
            "signed policy again ('cleartrace enroll')"
        ),
    )


def active_policy(paths: Paths) -> Policy:
    """The policy in force: the installed signed policy, else the built-in default.

    Raises:
        PolicyRefused: a policy is installed but does not verify; there is no
            silent fall-back to the default.
        HomeError: the installed policy cannot be read.
    """
    signed = installed_policy(paths)
    return DEFAULT_POLICY if signed is None else signed.policy


def check_installable(
    paths: Paths, signed: SignedPolicy
) -> tuple[SignedPolicy, SignedPolicy | None]:
    """What `install_policy` checks, without installing: (the policy verified
    again from its bytes, the installed one or None).

    Raises:
        PolicyRefused, HomeError: as `install_policy`.
    """
    # Verified again from its bytes: what is written is exactly what was checked,
    # however the SignedPolicy was put together.
    checked = read_signed_policy(signed.raw, expect_signer=signed.signer)
    current = installed_policy(paths)
    if current is not None:
        _check_replacement(policy_file(paths), current, checked)
    return checked, current


def install_policy(paths: Paths, signed: SignedPolicy) -> None:
    """Install `signed` as this device's policy (atomic, 0600).

    Installing the same policy again changes nothing.

    Raises:
        PolicyRefused: `signed` does not verify, is signed by another key than
            the installed policy, is older than it, or changes its text under
            the same version; or the installed policy does not verify.
        HomeError: the home is unsafe or the installed policy is unreadable.
        UsageError, DiskFull: the file cannot be written.
    """
    checked, current = check_installable(paths, signed)
    if current is not None and current.policy == checked.policy and current.raw == checked.raw:
        return
    ensure_private_dirs(paths)
    write_private_bytes(policy_file(paths), checked.raw, "policy")
    log.info(
        "installed policy %s v%d signed by %s",
        checked.policy.id,
        checked.policy.version,
        checked.fingerprint,
    )


def _check_replacement(path: Path, current: SignedPolicy, new: SignedPolicy) -> None:
    source = "the new policy"
    if new.signer != current.signer:
        _refuse(
            source,
            f"is signed by another key ({new.fingerprint}) than the installed policy "
            f"({current.fingerprint})",
            "a device follows one organisation; to move it to another, withdraw consent "
            f"and remove {path} first",
            "wrong-signer",
        )
    old, now = current.policy, new.policy
    if now.id != old.id:
        return
    if now.version < old.version:
        _refuse(
            source,
            f"is version {now.version} of '{now.id}', older than the installed version "
            f"{old.version}",
            "ask your organisation for its current policy",
            "older",
        )
    if now.version == old.version and now.sha256 != old.sha256:
        _refuse(
            source,
            f"changes '{now.id}' version {now.version} without a new version number",
            "ask your organisation to raise 'version' and sign it again",
            "same-version",
        )
