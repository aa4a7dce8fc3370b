"""REPORT_DIR/index.html and REPORT_DIR/report.pdf: the audit report a works council
or a data protection authority reads, from the content of coverage.json.

The report is built once (org/report_model.py) and rendered twice: the HTML
(org/report_html.py) and the PDF (org/report_pdf.py). coverage.json stays the
machine-readable source; these two say the same for people. The plotting and
PDF libraries are the `officer` extra: `OFFICER_MISSING` names what to install
when they are absent, so `org audit` can say so before it starts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cleartrace.errors import UsageError
from cleartrace.paths import write_private, write_private_bytes

__all__ = ["HTML", "PDF", "fresh_folder", "missing_officer_libraries", "write_report"]

HTML = "index.html"
PDF = "report.pdf"
_LIBRARIES = ("matplotlib", "reportlab")


def fresh_folder(out: Path, name: str) -> Path:
    """REPORT_DIR/`name` (0700), created, with the JSON Lines files an earlier
    audit left in it removed (a device or chain gone since must not linger).

    Raises:
        UsageError: it cannot be created or emptied.
    """
    folder = out / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for old in folder.glob("*.jsonl"):
            old.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write the report directory {out}: {exc.strerror}; give --out a directory "
            "you can write"
        ) from None
    return folder


def missing_officer_libraries() -> str | None:
    """A one-line message when the report's libraries are not installed, else None."""
    missing = [name for name in _LIBRARIES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"the audit report needs {' and '.join(missing)}, which are not installed: "
        "pip install 'cleartrace[officer]'"
    )


def write_report(out: Path, coverage: Mapping[str, Any], k: int) -> None:
    """Write index.html and report.pdf for `coverage` into `out`, showing fleet
    aggregates only for groups of at least `k` devices.

    Raises:
        UsageError: the officer libraries are missing, or `out` cannot be written.
        DiskFull: no room for the report.
    """
    if (message := missing_officer_libraries()) is not None:
        raise UsageError(message)
    from cleartrace.org import report_html, report_pdf  # the officer extra: loaded only here
    from cleartrace.org.report_model import build

    report = build(coverage, k)
    with write_private(out / HTML, "audit report (HTML)") as fh:
        fh.write(report_html.render(report))
    write_private_bytes(out / PDF, report_pdf.render(report), "audit report (PDF)")
