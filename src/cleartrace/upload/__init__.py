"""The device's side of uploading: bundle format, outbox, uploader, enrolment.

The public names are loaded on first use (PEP 562): the bundle format needs
pyarrow and the client requests, which no other command should pay for.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bundle": "bundle",
    "BundleBody": "bundle",
    "build_bundle": "bundle",
    "open_bundle": "bundle",
    "parse_bundle": "bundle",
    "verify_signature": "bundle",
    "CollectorClient": "client",
    "Outbox": "outbox",
    "Enrolment": "enrolment",
    "enrol": "enrolment",
    "load_enrolment": "enrolment",
    "BackgroundUploader": "background",
    "UploadReport": "upload_pass",
    "Uploader": "uploader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cleartrace.upload' has no attribute '{name}'")
    return getattr(importlib.import_module(f"cleartrace.upload.{module}"), name)
