"""The policy a person consents under.

The built-in default is what a device uses until its organisation deploys its
own policy. It is a Python constant, not a file read at run time, because an
installed package cannot rely on the repository's `resources/` directory;
`resources/policy/default-policy.json` holds the same content as the template
an organisation edits, and a test keeps the two equal.

The SHA-256 over the policy's RFC 8785 canonical JSON goes into every consent
record, so a consent always names exactly the text it was given to. Changing
any field therefore needs a new `version`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from cleartrace.categories import Category, PiiCategory
from cleartrace.errors import UsageError

__all__ = ["DEFAULT_POLICY", "Policy"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FIELDS = (
    "id",
    "version",
    "purpose",
    "categories",
    "mouse_move_hz",
    "hold_days",
    "exclusions",
    "pii",
)


@dataclass(frozen=True, slots=True)
class Policy:
    """What is asked for and why; see the module docstring for its hash."""

    id: str
    version: int
    purpose: str
    categories: tuple[Category, ...]
    #: Mouse moves are coalesced to at most this many per second.
    mouse_move_hz: int = 120
    #: Days a finished session waits for approval before it may be uploaded.
    hold_days: int = 3
    #: Application classes (WM_CLASS, lower case) never recorded; see exclusions.py.
    exclusions: tuple[str, ...] = ()
    #: What review flags (and `redact --pii` removes) in typed text.
    pii: tuple[PiiCategory, ...] = tuple(PiiCategory)
    _sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the hash goes into every consent record.
        digest = hashlib.sha256(rfc8785.dumps(self.as_dict())).hexdigest()
        object.__setattr__(self, "_sha256", digest)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the RFC 8785 canonical JSON of `as_dict()`."""
        return self._sha256

    def as_dict(self) -> dict[str, Any]:
        """The policy as the JSON object its hash and template are made of."""
        return {
            "id": self.id,
            "version": self.version,
            "purpose": self.purpose,
            "categories": [c.value for c in self.categories],
            "mouse_move_hz": self.mouse_move_hz,
            "hold_days": self.hold_days,
            "exclusions": list(self.exclusions),
            "pii": [c.value for c in self.pii],
        }

    def reference(self) -> dict[str, Any]:
        """How consent records name this policy: {id, version, sha256}."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Build a policy from its JSON object (an organisation's edited template).

        Raises:
            UsageError: a field is missing, unknown or of the wrong shape; the
                message names the field.
        """
        if not isinstance(data, dict):
            raise UsageError("a policy must be a JSON object; start from default-policy.json")
        unknown = set(data) - set(_FIELDS)
        missing = set(_FIELDS) - set(data)
        if unknown or missing:
            raise UsageError(
                f"policy fields wrong: unknown {sorted(unknown)}, missing {sorted(missing)}; "
                f"a policy has exactly: {', '.join(_FIELDS)}"
            )
        policy_id = data["id"]
        if not isinstance(policy_id, str) or not _ID.fullmatch(policy_id):
            raise UsageError("policy 'id' must be letters, digits, '.', '_' or '-' (at most 128)")
        version = _int(data, "version", 1, 2**31)
        purpose = data["purpose"]
        if not isinstance(purpose, str) or not purpose.strip():
            raise UsageError("policy 'purpose' must be a non-empty text telling people why")
        names = data["categories"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError("policy 'categories' must be a list of category names")
        try:
            categories = tuple(Category(n) for n in names)
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise UsageError(f"policy 'categories' may only name: {known}") from None
        if len(set(categories)) != len(categories):
            raise UsageError("policy 'categories' names a category twice")
        exclusions = data["exclusions"]
        if not isinstance(exclusions, list) or not all(
            isinstance(e, str) and e and e == e.strip().casefold() for e in exclusions
        ):
            raise UsageError("policy 'exclusions' must be a list of lower-case application classes")
        pii = data["pii"]
        known_pii = {c.value for c in PiiCategory}
        if not isinstance(pii, list) or not all(isinstance(n, str) and n in known_pii for n in pii):
            raise UsageError(f"policy 'pii' may only name: {', '.join(sorted(known_pii))}")
        if len(set(pii)) != len(pii):
            raise UsageError("policy 'pii' names a category twice")
        return cls(
            id=policy_id,
            version=version,
            purpose=purpose,
            categories=categories,
            mouse_move_hz=_int(data, "mouse_move_hz", 1, 1000),
            hold_days=_int(data, "hold_days", 0, 365),
            exclusions=tuple(exclusions),
            pii=tuple(PiiCategory(n) for n in pii),
        )


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if type(value) is not int or not low <= value <= high:
        raise UsageError(f"policy '{name}' must be a whole number from {low} to {high}")
    return value


DEFAULT_POLICY = Policy(
    id="cleartrace-default",
    version=2,
    purpose=(
        "Record how work is done at this computer (keys, mouse, focused application) "
        "to train AI models on real workflows. Only the categories you consent to are "
        "recorded; you can pause, review, delete and withdraw at any time."
    ),
    categories=tuple(Category),
    mouse_move_hz=120,
    hold_days=3,
    # Matched against the WM_CLASS class or instance, case-insensitively. A
    # lost dialog costs a training set little; a recorded password costs its
    # owner a lot, so doubtful cases are in.
    exclusions=(
        # password managers
        "1password",
        "bitwarden",
        "buttercup",
        "enpass",
        "gnome-passwordsafe",
        "keepass",
        "keepass2",
        "keepassx",
        "keepassxc",
        "keeweb",
        "kwalletmanager5",
        "lastpass",
        "nordpass",
        "proton-pass",
        "qtpass",
        "seahorse",
        "secrets",
        # PIN, passphrase and keyring prompts
        "gcr-prompter",
        "kwalletd5",
        "kwalletd6",
        "pinentry",
        "pinentry-fltk",
        "pinentry-gnome3",
        "pinentry-gtk-2",
        "pinentry-qt",
        "pinentry-qt5",
        # administrator (polkit, sudo) and SSH password prompts
        "gksu",
        "gksudo",
        "kdesu",
        "kdesudo",
        "ksshaskpass",
        "lxpolkit",
        "lxqt-openssh-askpass",
        "lxqt-policykit-agent",
        "lxqt-sudo",
        "polkit-gnome-authentication-agent-1",
        "polkit-kde-authentication-agent-1",
        "polkit-mate-authentication-agent-1",
        "ssh-askpass",
        "ssh-askpass-fullscreen",
        "sshaskpass",
        "x11-ssh-askpass",
        "xfce-polkit",
        "zenity",
        # screen lockers
        "cinnamon-screensaver",
        "gnome-screensaver",
        "i3lock",
        "kscreenlocker_greet",
        "light-locker",
        "mate-screensaver",
        "slock",
        "xfce4-screensaver",
        "xlock",
        "xscreensaver",
        "xsecurelock",
        "xtrlock",
    ),
)
