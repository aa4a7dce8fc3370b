"""The record format: canonical bytes, signatures, and the no-content rule."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cleartrace.consent import records
from cleartrace.consent.chain import format_problem
from cleartrace.consent.records import (
    ENVELOPE,
    GENESIS,
    KIND_FIELDS,
    check_signature,
    make_record,
    record_hash,
    register_field,
    register_kind,
    sign_record,
)
from cleartrace.errors import LedgerBroken
from cleartrace.formats import b64url, canonical, unb64url

POLICY_REF = {"id": "cleartrace-default", "version": 1, "sha256": "ab" * 32}
SESSION = "0123456789abcdef0123456789abcdef"

#: One valid set of fields per kind: the complete list of what records may say.
VALID_FIELDS: dict[str, dict[str, Any]] = {
    "consent.given": {"categories": ["clicks", "keys"], "policy": POLICY_REF},
    "consent.refused": {"categories": ["window_titles"], "policy": POLICY_REF},
    "consent.withdrawn": {"categories": ["app_focus", "window_titles"], "policy": POLICY_REF},
    "recording.paused": {"until": "2026-11-24T09:15:00Z"},
    "recording.resumed": {"reason": "timer"},
    "exclusion.added": {"app": "microsoft teams - preview"},
    "exclusion.removed": {"app": "slack"},
    "app.excluded": {"app_tag": "a5" * 32},
    "app.included": {"app_tag": "a5" * 32},
    "session.started": {"session": SESSION},
    "session.ended": {"session": SESSION},
    "session.deleted": {"session": SESSION},
    "session.redacted": {
        "session": SESSION,
        "method": "pii",
        "events": 24,
        "categories": ["keys"],
        "interval": {"start": "2026-11-24T09:15:00.000001Z", "end": "2026-11-24T09:15:03.5Z"},
    },
    "upload.redacted": {"session": SESSION, "spans": {"email": 2, "phone": 1}},
    "detection.released": {
        "session": SESSION,
        "pii": "phone",
        "interval": {"start": "2026-11-24T09:15:00.000001Z", "end": "2026-11-24T09:15:03.5Z"},
    },
    "session.approved": {"session": SESSION, "by": "hold_period"},
    "session.held": {"session": SESSION},
    "device.enrolled": {"policy": {"id": "acme", "version": 2, "sha256": "e" * 64}},
    "bundle.uploaded": {"bundle": "c" * 64, "witnessed": {"seq": 9, "hash": "d" * 64}},
    "session.shredded": {"session": SESSION},
    "key.rotated": {},
    "ledger.rollback": {
        "witnessed": {"seq": 9, "hash": "d" * 64},
        "local": {"seq": 4, "hash": "e" * 64},
    },
}


def signed(kind: str = "session.started", key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    unsigned = make_record(seq=1, prev=GENESIS, kind=kind, fields=VALID_FIELDS[kind])
    return sign_record(unsigned, key or Ed25519PrivateKey.generate())


#: The organisation's own ledger's kinds (org/org_ledger.py, ADR 0005), registered
#: when that module is imported: every command line imports it, so every verifier
#: knows them; imported here so that this list does not depend on test order.
ORG_FIELDS: dict[str, dict[str, Any]] = {
    "tokens.issued": {"tokens": 3},
    "device.admitted": {"device": "sha256:" + "d" * 64, "subject": "5" * 32},
    "ingest.run": {"bundles": 4, "rows": 120, "digest": "e" * 64},
    "audit.run": {"devices": 2, "digest": "e" * 64},
    "subject.exported": {"subject": "5" * 32, "bundles": 1, "rows": 9, "digest": "e" * 64},
    "subject.erased": {"subject": "5" * 32, "bundles": 1, "rows": 9, "digest": "e" * 64},
    "table.purged": {"table": "events", "snapshot": "7" * 19, "files": 3, "digest": "e" * 64},
}


def test_the_kinds_and_their_fields_are_exactly_the_documented_ones() -> None:
    importlib.import_module("cleartrace.org.org_ledger")
    documented = {**VALID_FIELDS, **ORG_FIELDS}
    assert {k: set(v) for k, v in KIND_FIELDS.items()} == {k: set(v) for k, v in documented.items()}
    for kind, fields in ORG_FIELDS.items():
        make_record(seq=1, prev=GENESIS, kind=kind, fields=fields)


@pytest.mark.parametrize("kind", sorted(VALID_FIELDS))
def test_every_kind_builds_a_record_with_only_envelope_and_its_fields(kind: str) -> None:
    record = signed(kind)
    assert set(record) == ENVELOPE | set(VALID_FIELDS[kind])
    assert (record["v"], record["seq"], record["prev"], record["kind"]) == (1, 1, GENESIS, kind)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("session.started", {"session": SESSION, "text": "typed words"}),
        ("consent.given", {**VALID_FIELDS["consent.given"], "title": "Inbox - Mail"}),
        ("exclusion.added", {"app": "slack", "window": "secret.txt"}),
        ("session.started", {"session": "typed words here, not an id"}),
        ("recording.resumed", {"reason": "because my password is hunter2"}),
        ("recording.paused", {"until": "after I type my PIN"}),
        ("exclusion.added", {"app": "two\nlines"}),
        ("exclusion.added", {"app": "Slack"}),
        ("app.excluded", {"app_tag": "signal-desktop"}),
        ("app.excluded", {"app_tag": "A5" * 32}),
        ("app.excluded", {"app_tag": "a5" * 32, "app": "slack"}),
        ("consent.given", {"categories": ["keys", "clicks"], "policy": POLICY_REF}),
        ("consent.given", {"categories": ["keys", "screen_text"], "policy": POLICY_REF}),
        ("consent.given", {"categories": [], "policy": POLICY_REF}),
        ("consent.given", {"categories": ["keys"], "policy": {**POLICY_REF, "note": "x"}}),
        ("consent.given", {"categories": ["keys"]}),
        ("keys.typed", {}),
        ("session.redacted", {**VALID_FIELDS["session.redacted"], "pattern": "hunter2"}),
        ("session.redacted", {**VALID_FIELDS["session.redacted"], "method": "hunter2"}),
        ("session.redacted", {**VALID_FIELDS["session.redacted"], "events": 0}),
        (
            "session.redacted",
            {**VALID_FIELDS["session.redacted"], "interval": {"start": "b", "end": "a"}},
        ),
        (
            "session.redacted",
            {
                **VALID_FIELDS["session.redacted"],
                "interval": {"start": "2026-11-24T09:15:01Z", "end": "2026-11-24T09:15:00Z"},
            },
        ),
        ("session.approved", {"session": SESSION, "by": "my manager, Jane"}),
        ("upload.redacted", {"session": SESSION, "spans": {}}),
        ("upload.redacted", {"session": SESSION, "spans": {"email": 0}}),
        ("upload.redacted", {"session": SESSION, "spans": {"hunter2": 1}}),
        ("upload.redacted", {"session": SESSION, "spans": ["email"]}),
        ("upload.redacted", {"session": SESSION, "spans": {"email": True}}),
        ("detection.released", {**VALID_FIELDS["detection.released"], "pii": "hunter2"}),
        ("detection.released", {**VALID_FIELDS["detection.released"], "text": "typed words"}),
    ],
)
def test_records_refuse_fields_or_values_that_could_carry_content(
    kind: str, fields: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"may not carry|must be|needs|unknown") as info:
        make_record(seq=1, prev=GENESIS, kind=kind, fields=fields)
    for value in ("typed words", "hunter2", "secret.txt", "Inbox", "PIN"):
        assert value not in str(info.value)


def test_record_time_is_utc_with_milliseconds_and_a_z() -> None:
    paris = timezone(timedelta(hours=1))
    when = datetime(2026, 11, 24, 10, 14, 3, 120999, tzinfo=paris)
    record = make_record(
        seq=1, prev=GENESIS, kind="session.started", fields={"session": SESSION}, now=when
    )
    assert record["time"] == "2026-11-24T09:14:03.120Z"


def test_a_naive_time_is_refused_rather_than_taken_as_local() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(
            seq=1,
            prev=GENESIS,
            kind="session.started",
            fields={"session": SESSION},
            now=datetime(2026, 11, 24, 9, 0),
        )


@pytest.mark.parametrize(("seq", "prev"), [(0, GENESIS), (True, GENESIS), (1, "00"), (1, "G" * 64)])
def test_bad_sequence_number_or_prev_is_refused(seq: int, prev: str) -> None:
    with pytest.raises(ValueError, match=r"'seq'|'prev'"):
        make_record(seq=seq, prev=prev, kind="session.started", fields={"session": SESSION})


def test_signature_covers_every_field() -> None:
    key = Ed25519PrivateKey.generate()
    record = signed("consent.given", key)
    check_signature(record, key.public_key())
    changes: dict[str, Any] = {
        "v": 2,
        "seq": 2,
        "time": "2026-01-01T00:00:00.000Z",
        "kind": "consent.refused",
        "prev": "1" * 64,
        "categories": ["keys"],
        "policy": {**POLICY_REF, "version": 2},
    }
    assert set(changes) == set(record) - {"sig"}
    for name, value in changes.items():
        with pytest.raises(LedgerBroken, match="signature does not verify") as info:
            check_signature({**record, name: value}, key.public_key())
        assert info.value.seq == record["seq"] or name == "seq"


def test_signature_by_another_key_does_not_verify() -> None:
    record = signed()
    with pytest.raises(LedgerBroken) as info:
        check_signature(record, Ed25519PrivateKey.generate().public_key())
    assert info.value.seq == 1
    assert "another key" in info.value.detail


def test_a_record_without_signature_is_broken() -> None:
    record = signed()
    del record["sig"]
    with pytest.raises(LedgerBroken, match="no signature"):
        check_signature(record, Ed25519PrivateKey.generate().public_key())


def test_signing_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already signed"):
        sign_record(signed(), Ed25519PrivateKey.generate())


def test_record_hash_covers_the_signature() -> None:
    key = Ed25519PrivateKey.generate()
    record = signed(key=key)
    unsigned = {k: v for k, v in record.items() if k != "sig"}
    assert record_hash(record) != record_hash(unsigned)
    assert len(record_hash(record)) == 64


@given(st.binary(max_size=80))
def test_base64url_round_trips_without_padding(raw: bytes) -> None:
    text = b64url(raw)
    assert "=" not in text
    assert "+" not in text
    assert "/" not in text
    assert unb64url(text) == raw


@pytest.mark.parametrize("text", ["AA==", "AB", "A", "A+B/", "AA AA", "AA\n"])
def test_base64url_has_one_spelling_per_byte_string(text: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        unb64url(text)


SAFE_INT = st.integers(-(2**53) + 1, 2**53 - 1)  # I-JSON, which RFC 8785 requires
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | SAFE_INT | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _reorder(value: Any, rng: st.DataObject) -> Any:
    if isinstance(value, dict):
        keys = rng.draw(st.permutations(list(value)))
        return {k: _reorder(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_reorder(v, rng) for v in value]
    return value


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8), st.data())
def test_canonical_bytes_do_not_depend_on_key_order(
    obj: dict[str, Any], data: st.DataObject
) -> None:
    assert canonical(_reorder(obj, data)) == canonical(obj)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8))
def test_canonical_bytes_survive_a_round_trip_through_any_json_parser(obj: dict[str, Any]) -> None:
    assert canonical(json.loads(canonical(obj))) == canonical(obj)
    assert canonical(json.loads(json.dumps(obj, indent=2, sort_keys=False))) == canonical(obj)


@pytest.fixture
def registry() -> Iterator[None]:
    """Restore the kind and field registries: later issues register for good, tests must not."""
    kinds, fields = dict(records._KIND_FIELDS), dict(records.FIELD_CHECKS)
    yield
    records._KIND_FIELDS.clear()
    records._KIND_FIELDS.update(kinds)
    records.FIELD_CHECKS.clear()
    records.FIELD_CHECKS.update(fields)


@pytest.mark.usefixtures("registry")
def test_new_kinds_can_be_registered_with_checked_fields() -> None:
    def report_id(value: object) -> None:
        if not (isinstance(value, str) and len(value) == 64):
            raise ValueError("'report' must be a hex SHA-256")

    register_field("report", report_id)
    register_kind("audit.reported", ["report", "session"])
    register_kind("session.audited", ["session"])
    assert KIND_FIELDS["audit.reported"] == {"report", "session"}
    record = make_record(
        seq=1, prev=GENESIS, kind="audit.reported", fields={"report": "c" * 64, "session": SESSION}
    )
    assert record["report"] == "c" * 64
    with pytest.raises(ValueError, match="'report' must be"):
        make_record(
            seq=1, prev=GENESIS, kind="audit.reported", fields={"report": "x", "session": SESSION}
        )


@pytest.mark.usefixtures("registry")
def test_registering_a_kind_refuses_duplicates_bad_names_and_undeclared_fields() -> None:
    with pytest.raises(ValueError, match="exists already"):
        register_kind("session.deleted", ["session"])
    with pytest.raises(ValueError, match=r"area\.event"):
        register_kind("Session Redacted", ["session"])
    with pytest.raises(ValueError, match="register_field first"):
        register_kind("session.typed", ["session", "text"])
    with pytest.raises(ValueError, match="already declared"):
        register_field("session", lambda value: None)
    with pytest.raises(ValueError, match="already declared"):
        register_field("sig", lambda value: None)


def test_bundle_uploaded_may_say_its_timing_and_old_records_without_it_stay_valid() -> None:
    key = Ed25519PrivateKey.generate()
    old = VALID_FIELDS["bundle.uploaded"]
    for fields in (old, {**old, "timing": "raw"}, {**old, "timing": "even"}):
        record = sign_record(
            make_record(seq=1, prev=GENESIS, kind="bundle.uploaded", fields=fields), key
        )
        assert format_problem(record) is None
    with pytest.raises(ValueError, match="'timing' must be 'raw' or 'even'"):
        make_record(seq=1, prev=GENESIS, kind="bundle.uploaded", fields={**old, "timing": "fast"})
    with pytest.raises(ValueError, match="may not carry \\['timing'\\]"):
        make_record(
            seq=1, prev=GENESIS, kind="session.held", fields={"session": SESSION, "timing": "raw"}
        )
