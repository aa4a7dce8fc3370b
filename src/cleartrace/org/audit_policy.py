"""What `org audit --policy` takes from the policy: that it is the organisation's own,
and the report's least group k (`report_min_group`).

The policy is the works agreement's text; its `report_min_group` is the
threshold the organisation agreed to. An officer may raise k on the command
line (`--k`) to show less, never lower it to show more: a lower `--k` is bad
usage, refused before anything is written. Without a policy, k is `--k`, or 5.
"""

from __future__ import annotations

from pathlib import Path

from cleartrace.consent.policy import DEFAULT_MIN_GROUP
from cleartrace.consent.signed_policy import SignedPolicy
from cleartrace.errors import UsageError
from cleartrace.formats import key_fingerprint
from cleartrace.org.keys import SIGN_PUB, load_signing_public

__all__ = ["check_policy_signer", "report_k"]

#: Where the k in use came from, as coverage.json records it.
FROM_POLICY, FROM_FLAG, FROM_DEFAULT = "policy", "--k", "default"


def report_k(policy: SignedPolicy | None, requested: int | None) -> tuple[int, str]:
    """The k the report uses and where it came from (FROM_POLICY, FROM_FLAG, FROM_DEFAULT).

    Raises:
        UsageError: `requested` is below the policy's least group.
    """
    if policy is None:
        return (DEFAULT_MIN_GROUP, FROM_DEFAULT) if requested is None else (requested, FROM_FLAG)
    least = policy.policy.min_group
    if requested is None or requested == least:
        return least, FROM_POLICY
    if requested < least:
        p = policy.policy
        raise UsageError(
            f"--k {requested} is below the policy's report_min_group {least} ({p.id} "
            f"v{p.version}): the threshold the organisation agreed to may be raised, not "
            f"lowered; give --k {least} or more, or leave --k out"
        )
    return requested, FROM_FLAG


def check_policy_signer(policy: SignedPolicy, keys: Path, source: Path) -> None:
    """Refuse a policy (read from `source`) not signed by KEYS/sign.pub's key.

    Raises:
        UsageError: another key signed it; both fingerprints are named.
        KeyStorageError: KEYS/sign.pub cannot be read.
    """
    ours = load_signing_public(keys)
    if policy.signer != ours:
        raise UsageError(
            f"{source} is signed by {policy.fingerprint}, not by this organisation's policy "
            f"key {key_fingerprint(ours)} ({keys / SIGN_PUB}); give --policy the policy "
            "signed with these keys, or --keys the key directory of the organisation that "
            "signed it"
        )
