"""Helpers shared by the tests: fixtures, a CLI runner, waiting, helper processes.

Import them as package modules (`from tests.support.cli import ct`); the
fixtures are registered for every test by `tests/conftest.py`. Modules run as
scripts in a child process (`killpoint.py`, `textfield.py`, `xwindow.py`,
`org_device.py`) are addressed through `SUPPORT`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "SUPPORT", "TESTS", "VECTORS"]

SUPPORT = Path(__file__).resolve().parent
TESTS = SUPPORT.parent
REPO = TESTS.parent
# Known-answer vectors: fixed inputs and outputs, shared by the tests of several packages.
VECTORS = TESTS / "vectors"
