"""Hostile bundles from an enrolled device: validly signed and sealed, built to exhaust a reader.

Each is refused with a one-line reason, within bounded memory, where the
collector examines a bundle (header) and where ingest opens one (ledger
segment, Arrow events).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.consent.records import GENESIS
from cleartrace.errors import BundleInvalid
from cleartrace.formats import b64url, canonical, key_fingerprint
from cleartrace.org.blobstore import bundle_key
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.suites import suite
from cleartrace.upload.arrow_limits import MAX_STREAM_MESSAGES
from cleartrace.upload.bundle import (
    MAX_LEDGER_RECORD,
    MAX_LEDGER_SEGMENT,
    open_bundle,
    parse_bundle,
    verify_signature,
)
from cleartrace.upload.bundle_header import MAGIC, MAX_HEADER
from cleartrace.upload.events_arrow import EVENT_SCHEMA, decode_events

_LEN = struct.Struct(">I")
#: Deeper than any JSON parser recursion the interpreter allows.
DEEP = 30_000
#: Runs the CLI, then writes the process's peak resident memory (VmHWM, KiB) to argv[1].
#: Not getrusage: across fork and exec it keeps the parent's peak (the test runner's).
PEAK_AFTER = """
import sys
from pathlib import Path
from cleartrace.cli import main
code = main(sys.argv[2:])
status = Path("/proc/self/status").read_text().splitlines()
Path(sys.argv[1]).write_text(next(l for l in status if l.startswith("VmHWM:")).split()[1])
sys.exit(code)
"""
#: What an ingest run that rejects its only bundle may use: far below the bomb's 760 MB.
INGEST_MEMORY_KIB = 300 * 1024


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[OrgKeys, Path]:
    keys = tmp_path_factory.mktemp("org") / "keys"
    return generate(keys), keys


def header_fields(device: Ed25519PrivateKey, org: OrgKeys, events: int) -> dict[str, Any]:
    public = device.public_key().public_bytes_raw()
    head = {"seq": 0, "hash": GENESIS}
    return {
        "v": 2,
        "type": "cleartrace-bundle",
        "suite": org.bundle_public.suite,
        "org_key": org.bundle_public.fingerprint,
        "device": key_fingerprint(public),
        "device_public_key": b64url(public),
        "subject": "ab" * 16,
        "session": "cd" * 16 if events else None,
        "interval": None,
        "created": "2026-12-02T12:00:00.000Z",
        "ledger": {"base": head, "head": head},
        "policy": {"id": "acme", "version": 1, "sha256": "2" * 64},
        "counts": {},
        "events": events,
        "redactions": [],
        "timing": "even",
    }


def seal(
    org: OrgKeys,
    device: Ed25519PrivateKey,
    *,
    segment: bytes = b"",
    events_ipc: bytes = b"",
    events: int = 0,
    header_bytes: bytes | None = None,
) -> bytes:
    """A bundle as build_bundle makes one, but of raw plaintext: what a hostile device sends."""
    if header_bytes is None:
        header_bytes = canonical(header_fields(device, org, events))
    plaintext = _LEN.pack(len(segment)) + segment + events_ipc
    sealed = suite(org.bundle_public.suite).encrypt(
        plaintext, org.bundle_public.hpke_key, info=header_bytes
    )
    signed = MAGIC + _LEN.pack(len(header_bytes)) + header_bytes + sealed
    return signed + device.sign(signed)


def zero_batches(batches: int, rows: int = 65_536) -> bytes:
    """An event stream of `batches` zstd batches of zeros: ~2 MB each decoded, ~1 KB sent."""
    zeros = pa.Table.from_arrays(
        [
            pa.array([0] * rows, f.type) if f.type != pa.string() else pa.nulls(rows, f.type)
            for f in EVENT_SCHEMA
        ],
        schema=EVENT_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, EVENT_SCHEMA, options=options) as writer:
        for _ in range(batches):
            writer.write_table(zeros)
    return bytes(sink.getvalue().to_pybytes())


def refused(raw: bytes, org: OrgKeys) -> BundleInvalid:
    bundle = parse_bundle(raw)
    verify_signature(bundle)
    with pytest.raises(BundleInvalid) as caught:
        open_bundle(bundle, org)
    assert "\n" not in str(caught.value)
    return caught.value


# -- the header: what the collector examines ---------------------------------------------


def test_a_header_nested_deeper_than_the_parser_recurses_is_malformed(
    org: tuple[OrgKeys, Path],
) -> None:
    nested = b"[" * (MAX_HEADER // 2) + b"]" * (MAX_HEADER // 2)
    raw = seal(org[0], Ed25519PrivateKey.generate(), header_bytes=nested)
    with pytest.raises(BundleInvalid, match="nested too deeply") as caught:
        parse_bundle(raw)
    assert caught.value.reason == "malformed"


def test_a_number_longer_than_python_converts_is_malformed_not_a_crash(
    org: tuple[OrgKeys, Path],
) -> None:
    # Python refuses to convert integers of more than 4300 digits with a plain ValueError.
    fields = header_fields(Ed25519PrivateKey.generate(), org[0], 0)
    header = canonical(fields).replace(b'"events":0', b'"events":' + b"9" * 5000)
    with pytest.raises(BundleInvalid) as caught:
        parse_bundle(seal(org[0], Ed25519PrivateKey.generate(), header_bytes=header))
    assert caught.value.reason == "malformed"
    segment = b'{"seq":' + b"1" * 5000 + b"}\n"
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=segment), org[0])
    assert error.reason == "malformed"


def test_a_header_longer_than_the_format_allows_is_refused_by_its_length() -> None:
    raw = MAGIC + _LEN.pack(MAX_HEADER + 1) + b"\0" * 100
    with pytest.raises(BundleInvalid, match="longer than") as caught:
        parse_bundle(raw)
    assert caught.value.reason == "header-too-large"


# -- the ledger segment: what ingest opens ------------------------------------------------


def test_a_ledger_record_nested_too_deeply_is_refused(org: tuple[OrgKeys, Path]) -> None:
    segment = b'{"x":' + b"[" * DEEP + b"]" * DEEP + b"}\n"
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=segment), org[0])
    assert "nested too deeply" in str(error)


def test_a_ledger_record_longer_than_its_bound_is_refused(org: tuple[OrgKeys, Path]) -> None:
    segment = b'{"x":"' + b"a" * MAX_LEDGER_RECORD + b'"}\n'
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=segment), org[0])
    assert error.reason == "too-large"


def test_a_ledger_segment_of_empty_arrays_larger_than_its_bound_is_refused(
    org: tuple[OrgKeys, Path],
) -> None:
    # 3 bytes of text become a 56-byte list each: twenty times the text once parsed.
    line = b"[" + b"[]," * 20_000 + b"[]]\n"
    segment = line * (MAX_LEDGER_SEGMENT // len(line) + 1)
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=segment), org[0])
    assert error.reason == "too-large"


def test_a_ledger_record_that_is_not_an_object_is_refused(org: tuple[OrgKeys, Path]) -> None:
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=b"[]\n"), org[0])
    assert "not a JSON object" in str(error)


@pytest.mark.parametrize(
    "segment",
    [
        b'{"a":1,"b":"x"}\n{"c":[1,2]}\n',  # as devices write it: read in one pass
        b'{"a":1,"b":"x"}\n{"c":[1,2]}',  # no newline at the end
        '{"a":"\u00e9t\u00e9"}\n{"b":2}\n'.encode(),  # not ASCII: read line by line
        b'{"a":1}\r\n{"b":2}\r\n',  # CRLF
        b'{"a":1} \n {"b":2}\n',  # spaces around a record
    ],
    ids=["canonical", "no-final-newline", "utf-8", "crlf", "spaces"],
)
def test_each_spelling_of_a_segment_reads_as_its_lines_do(
    org: tuple[OrgKeys, Path], segment: bytes
) -> None:
    """However a device spells its segment, the records are what each line says on
    its own, and the lines are the segment's (what the chain walk hashes)."""
    raw = seal(org[0], Ed25519PrivateKey.generate(), segment=segment)
    body = open_bundle(parse_bundle(raw), org[0])
    assert body.ledger == [json.loads(line) for line in segment.splitlines()]
    assert body.ledger_lines == segment.splitlines()


@pytest.mark.parametrize(
    ("segment", "says"),
    [
        (b'{"a":1}\n\n{"b":2}\n', "not JSON"),  # an empty line
        (b'{"a":1}{"b":2}\n', "not JSON"),  # two records on one line
        (b'{"a":1}\n[1]\n', "not a JSON object"),
        (b'{"a":1\n}\n', "not JSON"),  # a record across two lines
    ],
    ids=["empty-line", "two-on-a-line", "array", "split-record"],
)
def test_a_segment_not_of_one_object_a_line_is_refused(
    org: tuple[OrgKeys, Path], segment: bytes, says: str
) -> None:
    error = refused(seal(org[0], Ed25519PrivateKey.generate(), segment=segment), org[0])
    assert says in str(error)


# -- the events: an Arrow decompression bomb --------------------------------------------------


def test_an_event_stream_declaring_more_than_the_bound_is_refused_before_decoding() -> None:
    bomb = zero_batches(8)  # ~16 MB decoded from a few kilobytes
    assert len(bomb) < 64 * 1024
    with pytest.raises(BundleInvalid, match="more than") as caught:
        decode_events(bomb, max_bytes=4 * 2**20)
    assert caught.value.reason == "too-large"
    assert decode_events(bomb, max_bytes=64 * 2**20).num_rows == 8 * 65_536


def test_a_buffer_claiming_terabytes_is_refused_before_any_allocation() -> None:
    stream = bytearray(zero_batches(1))
    # Every compressed buffer starts with its uncompressed length: claim 1 TiB in each.
    marker = struct.pack("<q", 65_536 * 8)  # t_ns: 8 bytes a row
    at = stream.rindex(marker)  # in the body, after the metadata
    stream[at : at + 8] = struct.pack("<q", 2**40)
    with pytest.raises(BundleInvalid, match="more than") as caught:
        decode_events(bytes(stream))
    assert caught.value.reason == "too-large"


def v4_experimental_bomb(rows: int = 1 << 20) -> bytes:
    """Tens of MiB of zeros in a few KB: a V4 batch compressed only by its custom metadata.

    Arrow decompresses a V4 batch whose custom metadata says
    ARROW:experimental_compression even when its `compression` field is absent.
    """
    table = pa.Table.from_arrays(
        [
            pa.array([0] * rows, f.type) if f.type != pa.string() else pa.nulls(rows, f.type)
            for f in EVENT_SCHEMA
        ],
        schema=EVENT_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd", metadata_version=pa.ipc.MetadataVersion.V4)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_batch(
            table.to_batches()[0],
            custom_metadata={"ARROW:experimental_compression": "ZSTD"},
        )
    stream = bytearray(sink.getvalue().to_pybytes())
    metadata = list(pa.ipc.MessageReader.open_stream(pa.py_buffer(bytes(stream))))[1].metadata
    meta = metadata.to_pybytes()
    at = bytes(stream).index(meta)
    # Drop the RecordBatch's `compression` field (slot 3): zero its vtable entry.
    (root,) = struct.unpack_from("<I", meta, 0)
    (header_field,) = struct.unpack_from(
        "<H", meta, root - struct.unpack_from("<i", meta, root)[0] + 8
    )
    batch = root + header_field + struct.unpack_from("<I", meta, root + header_field)[0]
    vtable = batch - struct.unpack_from("<i", meta, batch)[0]
    stream[at + vtable + 10 : at + vtable + 12] = b"\0\0"
    return bytes(stream)


def test_a_v4_batch_compressed_by_custom_metadata_is_refused_before_decoding() -> None:
    bomb = v4_experimental_bomb()
    assert len(bomb) < 16 * 1024
    assert pa.ipc.open_stream(bomb).read_all().nbytes > 16 * 2**20  # what it would allocate
    with pytest.raises(BundleInvalid) as caught:
        decode_events(bomb, max_bytes=2**20)
    assert caught.value.reason == "malformed"


def test_an_uncompressed_batch_is_refused() -> None:
    # The encoder compresses every batch; one that is not is not the encoder's.
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, EVENT_SCHEMA) as writer:
        writer.write_table(pa.ipc.open_stream(zero_batches(1, rows=10)).read_all())
    with pytest.raises(BundleInvalid, match="not compressed"):
        decode_events(sink.getvalue().to_pybytes())


def test_a_stream_of_more_messages_than_the_encoder_writes_is_refused() -> None:
    # Empty batches declare nothing to decompress, yet each costs memory to decode.
    empty = pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, EVENT_SCHEMA, options=options) as writer:
        for _ in range(MAX_STREAM_MESSAGES):
            writer.write_batch(empty)
    stream = sink.getvalue().to_pybytes()
    assert len(pa.ipc.open_stream(stream).read_all()) == 0  # what it would decode
    with pytest.raises(BundleInvalid, match="messages") as caught:
        decode_events(stream)
    assert caught.value.reason == "too-large"


def test_ingest_rejects_an_arrow_bomb_with_a_reason_and_bounded_memory(
    tmp_path: Path, org: tuple[OrgKeys, Path]
) -> None:
    """~700 MB of events in ~400 KB: ingest (a real process) rejects it and stays small."""
    keys, keys_dir = org
    batches = 350
    raw = seal(
        keys,
        Ed25519PrivateKey.generate(),
        events_ipc=zero_batches(batches),
        events=batches * 65_536,
    )
    assert len(raw) < 1024 * 1024
    bundle = parse_bundle(raw)
    store = tmp_path / "store"
    path = store / bundle_key(bundle.name)
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    peak = tmp_path / "peak"
    args = ["org", "ingest", "--quiet", "--json", "--from", str(store), "--keys", str(keys_dir)]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_AFTER, str(peak), *args, "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert [r["reason"] for r in summary["rejected"]] == ["too-large"]
    assert int(peak.read_text()) < INGEST_MEMORY_KIB
