"""The policy a person consents under.

The built-in default is what a device uses until its organisation deploys its
own policy. It is a Python constant, not a file read at run time, because an
installed package cannot rely on the repository's `resources/` directory;
`resources/policy/default-policy.json` holds the same content as the template
an organisation edits, and a test keeps the two equal.

The SHA-256 over the policy's RFC 8785 canonical JSON goes into every consent
record, so a consent always names exactly the text it was given to. Changing
any field therefore needs a new `version`.

An organisation deploys its own policy as a signed file (see
`cleartrace.org.policy_signing` and `cleartrace.consent.signed_policy`); it
names where uploads go (`collector`), the key they are sealed to (`org_key`,
the content of the organisation's `bundle.pub`), the range a person may set
their hold period within, and how long the local copy of an uploaded session
is kept.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cleartrace.categories import USUAL, Category, PiiCategory
from cleartrace.consent.notice import Notice
from cleartrace.errors import UsageError
from cleartrace.formats import canonical
from cleartrace.suites import OrgPublicKey

__all__ = ["DEFAULT_MIN_GROUP", "DEFAULT_POLICY", "Policy"]

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
    "collector",
    "org_key",
    "hold_days_min",
    "hold_days_max",
    "keep_uploaded_days",
)
#: Fields a policy may leave out: policies signed before they existed keep their hash.
_OPTIONAL = ("notice", "auto_redact", "report_min_group")
#: The audit report's least group when the policy sets none (`Policy.min_group`).
DEFAULT_MIN_GROUP = 5
#: Upper bound of `keep_uploaded_days`: a century is more than any retention needs.
_MAX_DAYS = 36500


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
    #: Where sessions are uploaded (an http(s) URL); None: no upload.
    collector: str | None = None
    #: The organisation's bundle key uploads are sealed to (its bundle.pub); None: no upload.
    org_key: OrgPublicKey | None = None
    #: The range a person may set their own hold period within.
    hold_days_min: int = 0
    hold_days_max: int = 14
    #: Days the local copy of an uploaded session is kept before it is shredded:
    #: 0 shreds it right after upload, None keeps it until the person deletes it.
    keep_uploaded_days: int | None = None
    #: What the person is told about the organisation (consent/notice.py); None:
    #: the built-in default, or a policy signed before notices existed.
    notice: Notice | None = None
    #: What the detectors find of these kinds is left out of every bundle unless
    #: the person releases it (review/withheld.py); None: every kind, as for a
    #: policy signed before the field existed.
    auto_redact: tuple[PiiCategory, ...] | None = None
    #: The officer's audit report shows a figure that counts devices only for a
    #: group of at least this many (the works agreement's threshold); None: 5.
    report_min_group: int | None = None
    _sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the hash goes into every consent record.
        digest = hashlib.sha256(canonical(self.as_dict())).hexdigest()
        object.__setattr__(self, "_sha256", digest)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the RFC 8785 canonical JSON of `as_dict()`."""
        return self._sha256

    def as_dict(self) -> dict[str, Any]:
        """The policy as the JSON object its hash and template are made of.

        `notice` is left out when there is none, so a policy signed before it
        existed keeps the bytes (and hash) it was signed with.
        """
        data: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "purpose": self.purpose,
            "categories": [c.value for c in self.categories],
            "mouse_move_hz": self.mouse_move_hz,
            "hold_days": self.hold_days,
            "exclusions": list(self.exclusions),
            "pii": [c.value for c in self.pii],
            "collector": self.collector,
            "org_key": None if self.org_key is None else self.org_key.as_json(),
            "hold_days_min": self.hold_days_min,
            "hold_days_max": self.hold_days_max,
            "keep_uploaded_days": self.keep_uploaded_days,
        }
        if self.notice is not None:
            data["notice"] = self.notice.as_dict()
        if self.auto_redact is not None:
            data["auto_redact"] = [c.value for c in self.auto_redact]
        if self.report_min_group is not None:
            data["report_min_group"] = self.report_min_group
        return data

    @property
    def min_group(self) -> int:
        """The least number of devices a fleet figure in an audit report may count."""
        return DEFAULT_MIN_GROUP if self.report_min_group is None else self.report_min_group

    @property
    def withheld(self) -> tuple[PiiCategory, ...]:
        """The kinds of personal data left out of what is uploaded."""
        return tuple(PiiCategory) if self.auto_redact is None else self.auto_redact

    @property
    def detected(self) -> tuple[PiiCategory, ...]:
        """The kinds review searches for: those it flags and those withheld, so
        that what review marks "removed before upload" is what the upload removes."""
        wanted = set(self.pii) | set(self.withheld)
        return tuple(c for c in PiiCategory if c in wanted)

    def reference(self) -> dict[str, Any]:
        """How consent records name this policy: {id, version, sha256}."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Build a policy from its JSON object (an organisation's edited template).

        `from_dict(d).as_dict() == d` for every accepted `d`, so the hash of a
        policy is the hash of the JSON object an organisation signed.

        Raises:
            UsageError: a field is missing, unknown or of the wrong shape, or
                `hold_days` lies outside its bounds; the message names the field.
        """
        if not isinstance(data, dict):
            raise UsageError("a policy must be a JSON object; start from default-policy.json")
        unknown = set(data) - set(_FIELDS) - set(_OPTIONAL)
        missing = set(_FIELDS) - set(data)
        if unknown or missing:
            raise UsageError(
                f"policy fields wrong: unknown {sorted(unknown)}, missing {sorted(missing)}; "
                f"a policy has exactly: {', '.join(_FIELDS)} (and may have "
                f"{', '.join(_OPTIONAL)})"
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
        pii = _pii(data, "pii")
        auto_redact = None if "auto_redact" not in data else _pii(data, "auto_redact")
        min_group = None
        if "report_min_group" in data:
            min_group = _int(data, "report_min_group", 2, 1000)
        low = _int(data, "hold_days_min", 0, 365)
        high = _int(data, "hold_days_max", 0, 365)
        if high < low:
            raise UsageError("policy 'hold_days_max' must not be below 'hold_days_min'")
        hold_days = data["hold_days"]
        if type(hold_days) is not int or not low <= hold_days <= high:
            raise UsageError(
                f"policy 'hold_days' must be a whole number within the policy's bounds "
                f"'hold_days_min' to 'hold_days_max' ({low} to {high})"
            )
        keep = data["keep_uploaded_days"]
        if keep is not None:
            keep = _int(data, "keep_uploaded_days", 0, _MAX_DAYS, or_null=True)
        collector = _collector(data["collector"])
        org_key = _org_key(data["org_key"])
        if collector is not None and org_key is None:
            raise UsageError(
                "policy 'org_key' is null but 'collector' is set: devices cannot seal "
                "uploads without it; put the content of the organisation's bundle.pub there"
            )
        return cls(
            id=policy_id,
            version=version,
            purpose=purpose,
            categories=categories,
            mouse_move_hz=_int(data, "mouse_move_hz", 1, 1000),
            hold_days=hold_days,
            exclusions=tuple(exclusions),
            pii=pii,
            collector=collector,
            org_key=org_key,
            hold_days_min=low,
            hold_days_max=high,
            keep_uploaded_days=keep,
            notice=None if "notice" not in data else Notice.from_dict(data["notice"]),
            auto_redact=auto_redact,
            report_min_group=min_group,
        )


def _pii(data: dict[str, Any], name: str) -> tuple[PiiCategory, ...]:
    value = data[name]
    known = {c.value for c in PiiCategory}
    if not isinstance(value, list) or not all(isinstance(n, str) and n in known for n in value):
        raise UsageError(f"policy '{name}' may only name: {', '.join(sorted(known))}")
    if len(set(value)) != len(value):
        raise UsageError(f"policy '{name}' names a category twice")
    return tuple(PiiCategory(n) for n in value)


def _int(data: dict[str, Any], name: str, low: int, high: int, *, or_null: bool = False) -> int:
    value = data[name]
    if type(value) is not int or not low <= value <= high:
        null = " or null" if or_null else ""
        raise UsageError(f"policy '{name}' must be a whole number from {low} to {high}{null}")
    return value


def _collector(value: object) -> str | None:
    """The collector URL: http(s), a host, no credentials, query or fragment.

    Plain http is allowed for a collector on the same machine or behind a
    TLS-terminating proxy; bundles are sealed and signed either way.
    """
    if value is None:
        return None
    problem = "policy 'collector' must be null or an http:// or https:// URL of the collector"
    if not isinstance(value, str) or len(value) > 2048 or value != value.strip():
        raise UsageError(problem)
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # port raises ValueError when out of range
    except ValueError:
        raise UsageError(problem) from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise UsageError(problem)
    if parts.username is not None or parts.password is not None:
        # A policy is public: a password in it would be published to every device.
        raise UsageError("policy 'collector' must not carry a user name or password")
    if parts.query or parts.fragment or "#" in value or "?" in value:
        raise UsageError("policy 'collector' must not carry a query ('?') or fragment ('#')")
    return value


def _org_key(value: object) -> OrgPublicKey | None:
    if value is None:
        return None
    try:
        key = OrgPublicKey.from_json(value)
    except UsageError as exc:
        raise UsageError(f"policy 'org_key': {exc}") from None
    if key.as_json() != value:  # keeps from_dict(d).as_dict() == d, and so the hash
        raise UsageError("policy 'org_key' must be the content of bundle.pub, unchanged")
    return key


DEFAULT_POLICY = Policy(
    id="cleartrace-default",
    version=4,
    purpose=(
        "Record how work is done at this computer (keys, mouse, focused application) "
        "to train AI models on real workflows. Only the categories you consent to are "
        "recorded; you can pause, review, delete and withdraw at any time. "
        "Under this policy nothing leaves this computer: no organisation receives "
        "anything, and what is recorded stays here, encrypted, until you delete it."
    ),
    # Typing rhythm is asked for only by a policy that names it (categories.OPT_IN).
    categories=USUAL,
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
    # No organisation yet: nothing is uploaded until the device is enrolled.
    collector=None,
    org_key=None,
    hold_days_min=0,
    hold_days_max=14,
    keep_uploaded_days=None,
)
