"""Known answers for the encodings every format shares (cleartrace.formats)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cleartrace.categories import Category
from cleartrace.formats import (
    b64url,
    canonical,
    key_fingerprint,
    rfc3339,
    sign_canonical,
    unb64url,
    verify_ed25519,
)

# RFC 8032, section 7.1, test 1: the empty message.
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    record = {"v": 1, "kind": "test", "a": [1, "é", None, True]}
    assert canonical(record) == b'{"a":[1,"\xc3\xa9",null,true],"kind":"test","v":1}'


def test_canonical_json_writes_numbers_as_rfc_8785_does() -> None:
    # The example of RFC 8785, section 3.2.2.3.
    numbers = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001]}
    assert canonical(numbers) == b'{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, -(2**53)])
def test_canonical_json_refuses_what_json_cannot_carry_exactly(value: object) -> None:
    with pytest.raises(ValueError, match=r"not representable|exceeds safe integer"):
        canonical({"x": value})


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"\xfb", "-w"),
        (b"\xfb\xff", "-_8"),
        (b"\xfb\xff\xbf", "-_-_"),
        (b"ab\0c", "YWIAYw"),
    ],
)
def test_b64url_is_unpadded_url_safe_base64(raw: bytes, text: str) -> None:
    assert b64url(raw) == text
    assert unb64url(text) == raw


@given(st.binary(max_size=100))
def test_b64url_round_trips(raw: bytes) -> None:
    assert unb64url(b64url(raw)) == raw


@pytest.mark.parametrize(
    "text",
    ["-_8=", "+/8", "-_9", "a", "YW Iw", "YWI\n", b"YWI", None],
    ids=[
        "padding",
        "standard-alphabet",
        "trailing-bits",
        "one-char",
        "space",
        "newline",
        "bytes",
        "none",
    ],
)
def test_unb64url_refuses_every_other_spelling(text: object) -> None:
    with pytest.raises(ValueError, match="base64url"):
        unb64url(text)  # type: ignore[arg-type]


def test_rfc3339_is_utc_with_milliseconds_and_z() -> None:
    when = datetime(2026, 11, 24, 9, 14, 3, 120456, tzinfo=UTC)
    assert rfc3339(when) == "2026-11-24T09:14:03.120Z"
    assert rfc3339(when, timespec="seconds") == "2026-11-24T09:14:03Z"
    assert rfc3339(when, timespec="microseconds") == "2026-11-24T09:14:03.120456Z"


def test_rfc3339_spells_one_instant_once_whatever_its_zone() -> None:
    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 11, 24, 10, 14, 3, tzinfo=paris)) == "2026-11-24T09:14:03.000Z"


def test_rfc3339_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2026, 11, 24, 9, 14, 3))


def test_key_fingerprint_is_sha256_of_the_raw_public_key() -> None:
    assert key_fingerprint(PUBLIC) == (
        "sha256:21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
    )


def test_sign_canonical_signs_the_canonical_bytes() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SECRET)
    record = {"v": 1, "kind": "test", "a": [1, "é", None, True]}
    signature = sign_canonical(key, record)
    assert signature == (
        "gI5lJ1fPqd81T4QlJ9jmoonYoAjJ10iHb6eMlwn0ehMt8IybPlViZoTGN1FJEkq1Z0vgPAvDfHrWdeFR4lCQBg"
    )
    assert verify_ed25519(PUBLIC, unb64url(signature), canonical(record))


def test_verify_ed25519_accepts_the_rfc_8032_vector() -> None:
    assert verify_ed25519(PUBLIC, SIGNATURE, b"")
    assert verify_ed25519(Ed25519PrivateKey.from_private_bytes(SECRET).public_key(), SIGNATURE, b"")
    assert verify_ed25519(PUBLIC, SIGNATURE, memoryview(b"x")[:0])


def test_verify_ed25519_answers_false_for_other_data_or_another_key() -> None:
    flipped = bytes([SIGNATURE[0] ^ 1]) + SIGNATURE[1:]
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_ed25519(PUBLIC, flipped, b"")
    assert not verify_ed25519(PUBLIC, SIGNATURE, b"\0")
    assert not verify_ed25519(other, SIGNATURE, b"")


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (PUBLIC, SIGNATURE[:63]),
        (PUBLIC, SIGNATURE + b"\0"),
        (PUBLIC, b""),
        (PUBLIC, SIGNATURE.hex()),
        (PUBLIC, None),
        (PUBLIC[:31], SIGNATURE),
        (PUBLIC + b"\0", SIGNATURE),
        (PUBLIC.hex(), SIGNATURE),
    ],
    ids=[
        "short-sig",
        "long-sig",
        "empty-sig",
        "text-sig",
        "no-sig",
        "short-key",
        "long-key",
        "text-key",
    ],
)
def test_verify_ed25519_answers_false_for_malformed_key_or_signature_bytes(
    public: object, signature: object
) -> None:
    assert not verify_ed25519(public, signature, b"")  # type: ignore[arg-type]


# Every JSON value, with the corners where a fast serialiser could part from RFC 8785:
# control characters, lone surrogates, characters beyond the BMP (in keys they sort
# by UTF-16), integers at and past 2**53, floats, str and int subclasses, tuples.
_TEXT = st.text(st.characters(codec=None), max_size=12) | st.sampled_from(
    ["\x00", "\x7f", "\ud800", "\U0001f600", "\uffff", "é", '"\\', "\b\f\n\r\t"]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
    | st.sampled_from([Category.KEYS])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_TEXT, inner, max_size=5)
    ),
    max_leaves=20,
)
# The shapes the project writes: ledger records, heads, export headers.
_RECORD = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "seq": st.integers(min_value=1, max_value=2**53 - 1),
        "time": st.just("2026-12-06T03:00:00.000Z"),
        "kind": st.sampled_from(["consent.given", "session.started", "upload.redacted"]),
        "prev": st.just("0" * 64),
    },
    optional={
        "session": st.text("0123456789abcdef", min_size=32, max_size=32),
        "categories": st.lists(st.sampled_from(["keys", "clicks", "window_titles"])),
        "policy": st.fixed_dictionaries(
            {
                "id": st.text("abc-._0", min_size=1),
                "version": st.integers(1, 2**31),
                "sha256": st.just("a" * 64),
            }
        ),
        "spans": st.dictionaries(st.sampled_from(["email", "phone"]), st.integers(0, 99)),
        "until": st.none() | st.just("2026-12-06T04:00:00.000Z"),
        "sig": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
    },
)


def _rfc8785(obj: object) -> bytes | type[ValueError]:
    try:
        return rfc8785.dumps(obj)  # type: ignore[arg-type]
    except ValueError:
        return ValueError


def _ours(obj: object) -> bytes | type[ValueError]:
    try:
        return canonical(obj)  # type: ignore[arg-type]
    except ValueError:
        return ValueError


@given(st.dictionaries(_TEXT, _JSON, max_size=6) | _RECORD)
def test_canonical_json_is_byte_for_byte_rfc8785(obj: dict[str, object]) -> None:
    assert _ours(obj) == _rfc8785(obj)


@given(_RECORD)
def test_canonical_json_of_records_is_rfc8785(obj: dict[str, object]) -> None:
    assert canonical(obj) == rfc8785.dumps(obj)


def test_canonical_json_refuses_what_rfc8785_refuses() -> None:
    for bad in ({"n": 2**53}, {"s": "\ud800"}, {"f": float("nan")}, {1: "x"}, {"o": object()}):
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(bad)  # type: ignore[arg-type]
    # A key beyond the BMP sorts by its UTF-16 code units, before U+FFFF.
    assert canonical({"\uffff": 1, "\U0001f600": 2}) == rfc8785.dumps(
        {"\U0001f600": 2, "\uffff": 1}
    )
