"""The fields ledger records may carry, and the check each value must pass.

A field name means one thing in every kind, so each is declared once, here
(or through `records.register_field`). Every check raises ValueError naming
the field and never echoing the value: a value that fails may be the very
content that must not be written (typed text, a title).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cleartrace.categories import Category, PiiCategory
from cleartrace.store.redaction import METHODS as REDACTION_METHODS

__all__ = [
    "APPROVERS",
    "FIELD_CHECKS",
    "HEX64",
    "MAX_INT",
    "RESUME_REASONS",
    "FieldCheck",
    "check_app_name",
]

#: Why recording resumed: the person asked, or the pause they chose ran out.
RESUME_REASONS = frozenset({"person", "timer"})
#: Who approved a session: the person, or the policy's hold period running out.
APPROVERS = frozenset({"person", "hold_period"})
#: The largest integer RFC 8785 (I-JSON) represents exactly.
MAX_INT = 2**53 - 1

#: A check on one field's value; raises ValueError naming the field, never echoing the value.
FieldCheck = Callable[[object], None]

HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_POLICY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# UTC only, seconds required, fraction optional (the recorder writes whole
# seconds for `until`; record times always carry milliseconds).
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


# -- field checks -------------------------------------------------------------------


#: The values checked against, built once: a ledger walk checks every record's fields.
_CATEGORIES = frozenset(c.value for c in Category)
_PII = frozenset(c.value for c in PiiCategory)


def _check_categories(value: object) -> None:
    known = _CATEGORIES
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in known for v in value)
        or value != sorted(set(value))
    ):
        raise ValueError("'categories' must be a sorted, non-empty list of known category names")


def _check_policy(value: object) -> None:
    if (
        not isinstance(value, dict)
        or set(value) != {"id", "version", "sha256"}
        or not isinstance(value["id"], str)
        or not _POLICY_ID.fullmatch(value["id"])
        or type(value["version"]) is not int
        or not 1 <= value["version"] <= MAX_INT
        or not isinstance(value["sha256"], str)
        or not HEX64.fullmatch(value["sha256"])
    ):
        raise ValueError("'policy' must be {id, version, sha256} of a policy")


def _check_until(value: object) -> None:
    if value is not None and not (isinstance(value, str) and _UTC_TIME.fullmatch(value)):
        raise ValueError("'until' must be null or a UTC time like 2026-01-31T09:15:00Z")


def _check_reason(value: object) -> None:
    if value not in RESUME_REASONS:
        raise ValueError(f"'reason' must be one of {sorted(RESUME_REASONS)}")


def check_app_name(value: object) -> None:
    """An application class as a person names it in an exclusion.

    Lower case (matching is case-insensitive, so one spelling per app), at most
    128 characters, no control characters or surrounding spaces. Inner spaces
    are allowed: some WM_CLASS values have them ("microsoft teams - preview").

    Raises:
        ValueError: `value` is not such a name.
    """
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 128
        or value != value.strip()
        or value != value.casefold()
        or not value.isprintable()
    ):
        raise ValueError("'app' must be a lower-case application class of at most 128 characters")


def _check_app_tag(value: object) -> None:
    if not (isinstance(value, str) and HEX64.fullmatch(value)):
        raise ValueError("'app_tag' must be a keyed hash of 64 lower-case hex digits")


def _check_session(value: object) -> None:
    if not (isinstance(value, str) and _HEX32.fullmatch(value)):
        raise ValueError("'session' must be a session id of 32 lower-case hex digits")


def _check_method(value: object) -> None:
    if value not in REDACTION_METHODS:
        raise ValueError(f"'method' must be one of {sorted(REDACTION_METHODS)}")


def _check_events(value: object) -> None:
    if type(value) is not int or not 1 <= value <= MAX_INT:
        raise ValueError("'events' must be a positive integer")


def _check_interval(value: object) -> None:
    if (
        not isinstance(value, dict)
        or set(value) != {"start", "end"}
        or not all(isinstance(v, str) and _UTC_TIME.fullmatch(v) for v in value.values())
        or value["start"] > value["end"]
    ):
        raise ValueError("'interval' must be {start, end}: UTC times, start not after end")


def _check_by(value: object) -> None:
    if value not in APPROVERS:
        raise ValueError(f"'by' must be one of {sorted(APPROVERS)}")


def _check_bundle(value: object) -> None:
    if not (isinstance(value, str) and HEX64.fullmatch(value)):
        raise ValueError("'bundle' must be a bundle name (64 lower-case hex digits)")


def _check_witnessed(value: object) -> None:
    if (
        not isinstance(value, dict)
        or set(value) != {"seq", "hash"}
        or type(value["seq"]) is not int
        or not 0 <= value["seq"] <= MAX_INT
        or not isinstance(value["hash"], str)
        or not HEX64.fullmatch(value["hash"])
    ):
        raise ValueError("'witnessed' must be {seq, hash} of a ledger head")


def _check_pii(value: object) -> None:
    if value not in _PII:
        raise ValueError("'pii' must be the name of a kind of personal data review detects")


def _check_spans(value: object) -> None:
    known = _PII
    if (
        not isinstance(value, dict)
        or not value
        or not all(k in known for k in value)
        or not all(type(n) is int and 1 <= n <= MAX_INT for n in value.values())
    ):
        raise ValueError("'spans' must be a map of kinds of personal data to positive counts")


def _check_timing(value: object) -> None:
    if value not in ("raw", "even"):
        raise ValueError("'timing' must be 'raw' or 'even'")


#: Field name -> its check; `records.register_field` adds to it.
FIELD_CHECKS: dict[str, FieldCheck] = {
    "categories": _check_categories,
    "policy": _check_policy,
    "until": _check_until,
    "reason": _check_reason,
    "app": check_app_name,
    "app_tag": _check_app_tag,
    "session": _check_session,
    "method": _check_method,
    "events": _check_events,
    "interval": _check_interval,
    "by": _check_by,
    "bundle": _check_bundle,
    "witnessed": _check_witnessed,
    # This device's own ledger head at that moment ({seq, hash}, like "witnessed").
    "local": _check_witnessed,
    "pii": _check_pii,
    "spans": _check_spans,
    "timing": _check_timing,
}
