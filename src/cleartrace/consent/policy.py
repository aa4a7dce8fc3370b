"""The policy a person consents under.

The built-in default is what a device uses until its organisation deploys a
signed policy. Its SHA-256 (over RFC 8785 canonical JSON) goes into every
consent record, so a consent always names exactly the text it was given to.
`resources/policy/default-policy.json` is the same policy as an editable
template; a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import rfc8785

from cleartrace.categories import Category

__all__ = ["DEFAULT_POLICY", "Policy"]


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: int
    purpose: str
    categories: tuple[Category, ...]
    mouse_move_hz: int
    hold_days: int
    exclusions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "purpose": self.purpose,
            "categories": [c.value for c in self.categories],
            "mouse_move_hz": self.mouse_move_hz,
            "hold_days": self.hold_days,
            "exclusions": list(self.exclusions),
        }

    @property
    def sha256(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.as_dict())).hexdigest()

    def reference(self) -> dict[str, Any]:
        """How consent records name this policy."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(
            id=str(data["id"]),
            version=int(data["version"]),
            purpose=str(data["purpose"]),
            categories=tuple(Category(c) for c in data["categories"]),
            mouse_move_hz=int(data["mouse_move_hz"]),
            hold_days=int(data["hold_days"]),
            exclusions=tuple(str(e) for e in data["exclusions"]),
        )


DEFAULT_POLICY = Policy(
    id="cleartrace-default",
    version=1,
    purpose=(
        "Record how work is done at this computer (keys, mouse, focused application) "
        "to train AI models on real workflows. Only the categories you consent to are "
        "recorded; you can pause, review, delete and withdraw at any time."
    ),
    categories=tuple(Category),
    mouse_move_hz=120,
    hold_days=3,
    exclusions=(
        # password managers
        "keepassxc",
        "keepass2",
        "keepass",
        "bitwarden",
        "1password",
        "enpass",
        "lastpass",
        "gnome-passwordsafe",
        "secrets",
        "kwalletmanager5",
        # PIN and passphrase prompts
        "pinentry",
        "pinentry-gtk-2",
        "pinentry-gnome3",
        "pinentry-qt",
        "pinentry-qt5",
        "gcr-prompter",
        "gcr-viewer-gtk4",
        # administrator and SSH password prompts
        "polkit-gnome-authentication-agent-1",
        "polkit-kde-authentication-agent-1",
        "polkit-mate-authentication-agent-1",
        "lxpolkit",
        "lxqt-policykit-agent",
        "ssh-askpass",
        "ksshaskpass",
        "x11-ssh-askpass",
        "gnome-ssh-askpass",
        "lxqt-sudo",
        "gksu",
        "kdesu",
        # screen lockers
        "xscreensaver",
        "light-locker",
        "i3lock",
        "xsecurelock",
        "gnome-screensaver",
        "slock",
        "xlock",
        "lightdm-gtk-greeter",
        "kscreenlocker_greet",
    ),
)
