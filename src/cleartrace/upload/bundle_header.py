"""The bundle header: the part a collector reads before it holds the rest.

A bundle starts with MAGIC "CTBUNDLE", the header's length (u32, big-endian)
and the header, RFC 8785 canonical JSON (see `cleartrace.upload.bundle` for
the whole layout). Reading and checking it needs no key and no Arrow: it is
what the collector's admission and the device's outbox do with a bundle's
first bytes, apart from sealing and opening the body.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from typing import Any

from cleartrace.errors import BundleInvalid
from cleartrace.formats import canonical, key_fingerprint, unb64url
from cleartrace.suites import SUITES

__all__ = [
    "BUNDLE_TYPE",
    "FORMAT_VERSION",
    "HEADER_LENGTH",
    "MAGIC",
    "MAX_HEADER",
    "PREFIX",
    "TIMINGS",
    "check_header",
    "header_end",
    "parse_header",
    "read_json",
    "timing_of",
]

MAGIC = b"CTBUNDLE"
#: v2 added "timing"; v1 headers are still read, as "raw".
FORMAT_VERSION = 2
#: Which timing a bundle's key and pointer events carry: "raw" as captured
#: (the person consented to `typing_rhythm`), or "even" (upload/retiming.py).
TIMINGS = ("raw", "even")
BUNDLE_TYPE = "cleartrace-bundle"
#: A header is a few hundred bytes; anything near this is not a bundle.
MAX_HEADER = 64 * 1024
HEADER_LENGTH = struct.Struct(">I")
#: Magic and header length: what `header_end` needs.
PREFIX = len(MAGIC) + HEADER_LENGTH.size
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_V1_FIELDS = frozenset(
    {
        "v",
        "type",
        "suite",
        "org_key",
        "device",
        "device_public_key",
        "subject",
        "session",
        "interval",
        "created",
        "ledger",
        "policy",
        "counts",
        "events",
        "redactions",
    }
)
#: The fields of a header of each version.
_HEADER_FIELDS = {1: _V1_FIELDS, FORMAT_VERSION: _V1_FIELDS | {"timing"}}


def timing_of(header: Mapping[str, Any]) -> str:
    """The timing a checked header says its events carry: a v1 header, written
    before timing was evened out, carries them "raw"."""
    return str(header.get("timing", "raw"))


def header_end(prefix: bytes | bytearray) -> int:
    """Where the header of a bundle starting with `prefix` (at least `PREFIX` bytes) ends.

    Lets a reader refuse a bundle from its first bytes, before holding the rest.

    Raises:
        BundleInvalid: not a bundle, or a header longer than `MAX_HEADER`.
    """
    if len(prefix) < PREFIX or not prefix.startswith(MAGIC):
        raise BundleInvalid("not a ClearTrace bundle (wrong magic or too short)", "malformed")
    (length,) = HEADER_LENGTH.unpack_from(prefix, len(MAGIC))
    if length > MAX_HEADER:
        raise BundleInvalid(
            f"the bundle header is longer than {MAX_HEADER} bytes (it says {length})",
            "header-too-large",
        )
    return PREFIX + int(length)


def parse_header(data: bytes | bytearray) -> tuple[dict[str, Any], bytes]:
    """The checked header of the bundle `data` starts with, and its bytes.

    `data` may be only the start of a bundle, up to `header_end`.

    Raises:
        BundleInvalid: not a bundle, cut before the header's end, or a malformed header.
    """
    end = header_end(data)
    if end > len(data):
        raise BundleInvalid("the bundle is truncated or its header length is wrong", "truncated")
    header_bytes = bytes(data[PREFIX:end])
    header = read_json(header_bytes, "the bundle header")
    if not isinstance(header, dict):
        raise BundleInvalid("the bundle header is not a JSON object", "malformed")
    check_header(header)
    try:
        canonical_bytes = canonical(header)
    except (ValueError, RecursionError):
        canonical_bytes = b""
    if canonical_bytes != header_bytes:
        raise BundleInvalid("the bundle header is not canonical JSON", "malformed")
    return header, header_bytes


def read_json(data: bytes, what: str) -> Any:
    """Parse JSON from a bundle; nesting deeper than the interpreter recurses is refused.

    Raises:
        BundleInvalid: not UTF-8 JSON, nested too deeply, or a number too long.
    """
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleInvalid(f"{what} is not JSON", "malformed") from None
    except RecursionError:
        raise BundleInvalid(f"{what} is JSON nested too deeply", "malformed") from None
    except ValueError:
        # A number of more digits than Python converts (sys.get_int_max_str_digits).
        raise BundleInvalid(f"{what} has a number too long to read", "malformed") from None


# -- header checks --------------------------------------------------------------------


def _bad(what: str) -> BundleInvalid:
    return BundleInvalid(f"the bundle header is malformed: {what}", "malformed")


def _is_head(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"seq", "hash"}
        and type(value["seq"]) is int
        and value["seq"] >= 0
        and isinstance(value["hash"], str)
        and _HEX64.fullmatch(value["hash"]) is not None
    )


def check_header(header: Mapping[str, Any]) -> None:
    """Shape checks a collector can make without any key but the device's.

    Raises:
        BundleInvalid: a field is missing, extra or of the wrong shape.
    """
    version = header.get("v")
    if (
        type(version) is not int
        or version not in _HEADER_FIELDS
        or header.get("type") != BUNDLE_TYPE
    ):
        raise _bad(f"unsupported version (this reads v1 to v{FORMAT_VERSION})")
    fields = _HEADER_FIELDS[version]
    if set(header) != fields:
        raise _bad(f"fields must be exactly {sorted(fields)}")
    if version >= 2 and header["timing"] not in TIMINGS:
        raise _bad(f"'timing' must be one of {', '.join(TIMINGS)}")
    if header["suite"] not in SUITES:
        raise _bad(f"suite must be one of {', '.join(SUITES)}")
    for name in ("org_key", "device"):
        value = header[name]
        if not (
            isinstance(value, str) and value.startswith("sha256:") and _HEX64.fullmatch(value[7:])
        ):
            raise _bad(f"'{name}' must be a sha256: fingerprint")
    try:
        public = unb64url(header["device_public_key"])
    except ValueError:
        raise _bad("'device_public_key' is not base64url") from None
    if len(public) != 32 or header["device"] != key_fingerprint(public):
        raise _bad("'device' is not the fingerprint of 'device_public_key'")
    if not (isinstance(header["subject"], str) and _HEX32.fullmatch(header["subject"])):
        raise _bad("'subject' must be 32 hex digits")
    session = header["session"]
    if session is not None and not (isinstance(session, str) and _HEX32.fullmatch(session)):
        raise _bad("'session' must be null or 32 hex digits")
    ledger = header["ledger"]
    if not (
        isinstance(ledger, dict)
        and set(ledger) == {"base", "head"}
        and _is_head(ledger["base"])
        and _is_head(ledger["head"])
        and ledger["head"]["seq"] >= ledger["base"]["seq"]
    ):
        raise _bad("'ledger' must be {base, head} with head.seq >= base.seq")
    if type(header["events"]) is not int or header["events"] < 0:
        raise _bad("'events' must be a count")
    counts = header["counts"]
    if not (isinstance(counts, dict) and all(type(v) is int and v >= 0 for v in counts.values())):
        raise _bad("'counts' must map categories to counts")
    if not isinstance(header["redactions"], list):
        raise _bad("'redactions' must be a list")
    if header["interval"] is not None and not (
        isinstance(header["interval"], dict) and set(header["interval"]) == {"start", "end"}
    ):
        raise _bad("'interval' must be null or {start, end}")
