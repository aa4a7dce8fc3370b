"""docs/threat-model.md names the tests that hold each promise: they must exist."""

from __future__ import annotations

import re

from tests.support import REPO

# `path/to/test_x.py`, `path/to/test_x.py::test_name`, or `::test_name` (same file as before).
REFERENCE = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)?(?:::(test_\w+))?`")


def references(text: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    last: str | None = None
    for path, name in REFERENCE.findall(text):
        if path:
            last = path
        if last is not None and (path or name):
            found.append((last, name or None))
    return found


def test_every_test_the_threat_model_names_exists() -> None:
    text = (REPO / "docs" / "threat-model.md").read_text(encoding="utf-8")
    refs = references(text)
    assert len(refs) >= 30
    missing = []
    for path, name in refs:
        file = REPO / "tests" / path
        if not file.is_file():
            missing.append(path)
        elif name is not None and not re.search(
            rf"^def {name}\b", file.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{path}::{name}")
    assert missing == []
