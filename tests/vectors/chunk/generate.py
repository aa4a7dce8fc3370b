"""Write the chunk known-answer vectors for codec versions 4 and 5 (v3.json,
v4.json): the same events by column, as compaction writes them, and as rows,
as a flush writes them.

Run by hand when the codec deliberately changes (a new version byte):
    PYTHONPATH=src .venv/bin/python tests/vectors/chunk/generate.py
v1.json (codec version 2) and v2.json (codec version 3) are kept as written:
stores made before must still open, and tests/store/test_chunks.py checks
that they do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cleartrace.events import Kind
from cleartrace.store.chunks import _seal_chunk_with_nonce, chunk_aad, zstd_compressor
from cleartrace.store.codec import CODEC_VERSION, ROWS_VERSION, encode_events, encode_rows

HERE = Path(__file__).parent
# Test values only: published with the vector, never used for anything else.
KEY = bytes(range(32))
SESSION = "00112233445566778899aabbccddeeff"
INDEX = 7
NONCE = bytes(range(0xA0, 0xAC))
EVENTS: list[tuple[Any, ...]] = [
    (1_000_000_000, Kind.SCREEN, 2, 3840, 1200, 125, None),
    (1_000_000_000, Kind.MONITOR, 0, 120, 1920, 1080, None),
    (1_000_000_000, Kind.MONITOR, 1920, 0, 1920, 1200, None),
    (1_000_000_000, Kind.LAYOUT, 0, 0, 0, 0, ("us", None)),
    (1_000_003_000, Kind.FOCUS, 100, 150, 800, 600, ("Gedit", "notes.txt – Gedit")),
    (1_050_217_000, Kind.KEY_DOWN, 72, 0, 0, 0, None),
    (1_120_999_000, Kind.KEY_UP, 72, 0, 0, 0, None),
    (1_150_000_000, Kind.LAYOUT, 1, 0, 0, 0, ("de", None)),
    (1_200_417_000, Kind.KEY_DOWN, 0xFC, 0, 0, 0, None),
    (1_260_001_000, Kind.KEY_UP, 0xFC, 0, 0, 0, None),
    (1_300_500_000, Kind.MOVE, 640, 400, 0, 0, None),
    (1_308_666_000, Kind.MOVE, 630, 404, 0, 0, None),
    (1_316_666_000, Kind.MOVE, 2100, 12, 0, 0, None),
    (1_400_000_001_000, Kind.BUTTON_DOWN, 2100, 12, 1, 0, None),
    (1_400_080_123_000, Kind.BUTTON_UP, 2100, 12, 1, 0, None),
    (1_400_100_000_000, Kind.SCROLL, 2100, 12, 0, -1, None),
    (1_400_150_000_000, Kind.FOCUS, 1920, 0, 1920, 1200, ("firefox", None)),
    (1_400_200_000_000, Kind.EXCLUDED_START, 0, 0, 0, 0, None),
    (1_401_200_000_000, Kind.EXCLUDED_END, 0, 0, 0, 0, None),
    (1_401_300_000_000, Kind.SCREEN, 1, 1920, 1080, 100, None),
    (1_401_300_000_000, Kind.MONITOR, 0, 0, 1920, 1080, None),
    (1_401_300_999_000, Kind.KEY_DOWN, 0xFF0D, 0, 0, 0, None),
]


def vector(rows: bool) -> dict[str, Any]:
    events = [(t, int(k), a, b, c, d, text) for t, k, a, b, c, d, text in EVENTS]
    encoded = encode_rows(events) if rows else encode_events(events)
    frame = zstd_compressor(3).compress(encoded)
    chunk = _seal_chunk_with_nonce(KEY, SESSION, INDEX, events, NONCE, rows=rows)
    version = ROWS_VERSION if rows else CODEC_VERSION
    layout = "by rows, as a flush writes it" if rows else "by column, as compaction writes it"
    return {
        "description": (
            f"Chunk format v1 holding codec v{version} (docs/adr/0001-chunk-format.md), "
            f"{layout}: microsecond stamps, screen layout, monitors, keyboard layouts and"
            " focus geometry as well as input. 'encoded' is the codec output"
            " (deterministic); 'zstd_frame' is what zstd level 3 (shortest match 6)"
            " produced when the vector was made; 'chunk' = 0x01 || nonce ||"
            " AES-256-GCM(key, nonce, zstd_frame, aad). Event fields: t_ns, kind, a, b, c, d,"
            " [app, title] or null (a layout's name is its app)."
        ),
        "key": KEY.hex(),
        "session_id": SESSION,
        "index": INDEX,
        "nonce": NONCE.hex(),
        "encoded": encoded.hex(),
        "zstd_frame": frame.hex(),
        "aad": chunk_aad(SESSION, INDEX).hex(),
        "chunk": chunk.hex(),
        "events": [[*e[:6], list(e[6]) if e[6] else None] for e in events],
    }


def main() -> None:
    for name, rows in (("v3.json", False), ("v4.json", True)):
        text = json.dumps(vector(rows), indent=1, ensure_ascii=False) + "\n"
        (HERE / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
