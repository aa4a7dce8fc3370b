"""The bundle: one session (or only ledger records) sealed to the organisation.

Layout (see docs/bundle-format.md, which has test vectors)::

    MAGIC "CTBUNDLE" | header length (u32, big-endian) | header |
    sealed body (HPKE enc || ciphertext) | Ed25519 signature (64 bytes)

The header is RFC 8785 canonical JSON and is the HPKE `info`, so a header
cannot be moved onto another body: opening fails. HPKE alone does not say
who sealed a body, so the device signs everything before the signature.
The name of a bundle is the SHA-256 of all its bytes.

Body plaintext: ledger segment length (u32, big-endian) | the ledger records
base.seq+1..head.seq as canonical JSON lines | the events as an Arrow IPC
stream (absent in a ledger-only bundle).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import BundleInvalid, BundleNotForThisKey, BundleSignatureInvalid
from cleartrace.formats import b64url, canonical, key_fingerprint, unb64url, verify_ed25519
from cleartrace.suites import SUITES, OrgPublicKey, suite
from cleartrace.upload.events_arrow import EVENT_SCHEMA, decode_events

__all__ = [
    "BUNDLE_TYPE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_HEADER",
    "MAX_LEDGER_RECORD",
    "MAX_LEDGER_SEGMENT",
    "PREFIX",
    "Bundle",
    "BundleBody",
    "OrgPrivateKey",
    "build_bundle",
    "header_end",
    "open_bundle",
    "parse_bundle",
    "parse_header",
    "verify_signature",
]

MAGIC = b"CTBUNDLE"
FORMAT_VERSION = 1
BUNDLE_TYPE = "cleartrace-bundle"
#: A header is a few hundred bytes; anything near this is not a bundle.
MAX_HEADER = 64 * 1024
#: A ledger record is a few hundred bytes, and a bundle carries the records since
#: the last upload; parsed JSON takes up to some twenty times its text, so these
#: bound what opening a hostile segment can hold.
MAX_LEDGER_RECORD = 64 * 1024
MAX_LEDGER_SEGMENT = 8 * 2**20
_SIG = 64
_LEN = struct.Struct(">I")
#: Magic and header length: what `header_end` needs.
PREFIX = len(MAGIC) + _LEN.size
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEADER_FIELDS = frozenset(
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


class OrgPrivateKey(Protocol):
    """What `open_bundle` needs of the organisation's keys (org.keys.OrgKeys has it)."""

    @property
    def bundle_private(self) -> Any: ...

    @property
    def bundle_public(self) -> OrgPublicKey: ...


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle: the header is checked in shape, nothing is verified yet."""

    raw: bytes | bytearray = field(repr=False)
    name: str
    header: dict[str, Any]
    header_bytes: bytes = field(repr=False)
    device_public_key: Ed25519PublicKey = field(repr=False)

    @property
    def device(self) -> str:
        return str(self.header["device"])

    @property
    def session(self) -> str | None:
        session = self.header["session"]
        return None if session is None else str(session)

    @property
    def base(self) -> tuple[int, str]:
        base = self.header["ledger"]["base"]
        return int(base["seq"]), str(base["hash"])

    @property
    def head(self) -> tuple[int, str]:
        head = self.header["ledger"]["head"]
        return int(head["seq"]), str(head["hash"])

    @property
    def _sealed(self) -> memoryview:
        start = len(MAGIC) + _LEN.size + len(self.header_bytes)
        return memoryview(self.raw)[start : len(self.raw) - _SIG]


@dataclass(frozen=True)
class BundleBody:
    """A bundle's decrypted content."""

    ledger: list[dict[str, Any]]
    events: pa.Table = field(repr=False)


def build_bundle(
    *,
    header_fields: Mapping[str, Any],
    ledger: Sequence[Mapping[str, Any]],
    events_ipc: bytes,
    org_key: OrgPublicKey,
    device_key: Ed25519PrivateKey,
) -> bytes:
    """Seal and sign a bundle.

    `header_fields` are the header without "v", "type", "suite", "org_key",
    "device_public_key" and "device", which this function fills from the keys.

    Raises:
        BundleInvalid: the header would not be well formed (a bug in the caller).
    """
    public = device_key.public_key().public_bytes_raw()
    header = {
        **header_fields,
        "v": FORMAT_VERSION,
        "type": BUNDLE_TYPE,
        "suite": org_key.suite,
        "org_key": org_key.fingerprint,
        "device_public_key": b64url(public),
        "device": key_fingerprint(public),
    }
    _check_header(header)
    header_bytes = canonical(header)
    segment = b"".join(canonical(r) + b"\n" for r in ledger)
    plaintext = _LEN.pack(len(segment)) + segment + events_ipc
    sealed = suite(org_key.suite).encrypt(plaintext, org_key.hpke_key, info=header_bytes)
    signed = MAGIC + _LEN.pack(len(header_bytes)) + header_bytes + sealed
    return signed + device_key.sign(signed)


def header_end(prefix: bytes | bytearray) -> int:
    """Where the header of a bundle starting with `prefix` (at least `PREFIX` bytes) ends.

    Lets a reader refuse a bundle from its first bytes, before holding the rest.

    Raises:
        BundleInvalid: not a bundle, or a header longer than `MAX_HEADER`.
    """
    if len(prefix) < PREFIX or not prefix.startswith(MAGIC):
        raise BundleInvalid("not a ClearTrace bundle (wrong magic or too short)", "malformed")
    (length,) = _LEN.unpack_from(prefix, len(MAGIC))
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
    header = _json(header_bytes, "the bundle header")
    if not isinstance(header, dict):
        raise BundleInvalid("the bundle header is not a JSON object", "malformed")
    _check_header(header)
    try:
        canonical_bytes = canonical(header)
    except (ValueError, RecursionError):
        canonical_bytes = b""
    if canonical_bytes != header_bytes:
        raise BundleInvalid("the bundle header is not canonical JSON", "malformed")
    return header, header_bytes


def parse_bundle(raw: bytes | bytearray) -> Bundle:
    """Split a bundle into its parts and check the header's shape.

    Raises:
        BundleInvalid: truncated, not a bundle, or a malformed header.
    """
    if len(raw) < PREFIX + _SIG:
        raise BundleInvalid("not a ClearTrace bundle (wrong magic or too short)", "malformed")
    if header_end(raw) + _SIG > len(raw):
        raise BundleInvalid("the bundle is truncated or its header length is wrong", "truncated")
    header, header_bytes = parse_header(raw)
    device_public = unb64url(header["device_public_key"])
    return Bundle(
        raw=raw,
        name=hashlib.sha256(raw).hexdigest(),
        header=header,
        header_bytes=header_bytes,
        device_public_key=Ed25519PublicKey.from_public_bytes(device_public),
    )


def verify_signature(bundle: Bundle) -> None:
    """Check the device signature over the bundle.

    Raises:
        BundleSignatureInvalid: the bytes were changed, or signed by another key
            than the one the header names.
    """
    signed = memoryview(bundle.raw)[: len(bundle.raw) - _SIG]
    if not verify_ed25519(bundle.device_public_key, bytes(bundle.raw[-_SIG:]), signed):
        raise BundleSignatureInvalid(
            f"bundle {bundle.name[:16]}: the device signature does not verify "
            "(changed after signing, or signed by another key)"
        )


def open_bundle(bundle: Bundle, org: OrgPrivateKey) -> BundleBody:
    """Decrypt a bundle with the organisation's private key.

    Verify the signature first (`verify_signature`); this only decrypts.

    Raises:
        BundleNotForThisKey: sealed to another key, or the sealed bytes or the
            header were changed.
        BundleInvalid: the decrypted body is malformed.
    """
    if bundle.header["org_key"] != org.bundle_public.fingerprint:
        raise BundleNotForThisKey(
            f"bundle {bundle.name[:16]} is sealed to organisation key "
            f"{bundle.header['org_key']}, not to {org.bundle_public.fingerprint}"
        )
    try:
        plaintext = suite(bundle.header["suite"]).decrypt(
            bytes(bundle._sealed), org.bundle_private, info=bundle.header_bytes
        )
    except (InvalidTag, ValueError):
        raise BundleNotForThisKey(
            f"bundle {bundle.name[:16]} does not open with this organisation key "
            "(another key, or the sealed part was changed)"
        ) from None
    if len(plaintext) < _LEN.size:
        raise BundleInvalid(f"bundle {bundle.name[:16]}: the body is truncated", "malformed")
    (length,) = _LEN.unpack_from(plaintext, 0)
    if _LEN.size + length > len(plaintext):
        raise BundleInvalid(f"bundle {bundle.name[:16]}: the ledger segment is cut", "malformed")
    ledger = _ledger(bundle.name, plaintext[_LEN.size : _LEN.size + length])
    rest = memoryview(plaintext)[_LEN.size + length :]
    events = decode_events(rest) if len(rest) else EVENT_SCHEMA.empty_table()
    if bundle.session is None and events.num_rows:
        raise BundleInvalid(f"bundle {bundle.name[:16]}: a ledger-only bundle has events")
    if events.num_rows != bundle.header["events"]:
        raise BundleInvalid(
            f"bundle {bundle.name[:16]}: the body holds {events.num_rows} events, "
            f"the header says {bundle.header['events']}"
        )
    return BundleBody(ledger=ledger, events=events)


def _ledger(name: str, segment: bytes) -> list[dict[str, Any]]:
    """The ledger records of a body: JSON objects, one a line, within the size bounds.

    Raises:
        BundleInvalid: too large, or not JSON object lines.
    """
    if len(segment) > MAX_LEDGER_SEGMENT:
        raise BundleInvalid(
            f"bundle {name[:16]}: the ledger segment is larger than {MAX_LEDGER_SEGMENT} bytes",
            "too-large",
        )
    records = []
    for line in segment.splitlines():
        if len(line) > MAX_LEDGER_RECORD:
            raise BundleInvalid(
                f"bundle {name[:16]}: a ledger record is longer than {MAX_LEDGER_RECORD} bytes",
                "too-large",
            )
        record = _json(line, f"bundle {name[:16]}: the ledger segment")
        if not isinstance(record, dict):
            raise BundleInvalid(f"bundle {name[:16]}: a ledger record is not a JSON object")
        records.append(record)
    return records


def _json(data: bytes, what: str) -> Any:
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


def _check_header(header: Mapping[str, Any]) -> None:
    """Shape checks a collector can make without any key but the device's."""
    if set(header) != _HEADER_FIELDS:
        raise _bad(f"fields must be exactly {sorted(_HEADER_FIELDS)}")
    if header["v"] != FORMAT_VERSION or header["type"] != BUNDLE_TYPE:
        raise _bad(f"unsupported version (this reads v{FORMAT_VERSION})")
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
