"""The organisation's side: keys, policy signing, the collector and ingest.

The public names are loaded on first use (PEP 562): the collector needs
uvicorn and Starlette, ingest pyarrow and boto3, and the CLI loads none of
them for the other commands. `serve` and `ingest` are modules as well as
functions: import those two from `cleartrace.org.serve` and
`cleartrace.org.ingest`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The dataset's file formats (see docs/dataset.md), here so that the CLI can
#: offer them without loading pyarrow.
FORMATS = ("parquet", "jsonl")

#: Where ingest's per-bundle work runs (org/ingest.py): this process, or a Ray
#: cluster (org/ingest_ray.py); named here for the CLI, as FORMATS is.
ENGINES = ("inprocess", "ray")

_EXPORTS = {
    "OrgKeys": "keys",
    "generate": "keys",
    "load_private": "keys",
    "init_policy": "policy_signing",
    "sign_policy_file": "policy_signing",
    "Registry": "registry",
    "open_store": "blobstore",
    "Collector": "collector",
    "Dataset": "dataset",
}

__all__ = ["ENGINES", "FORMATS", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cleartrace.org' has no attribute '{name}'")
    return getattr(importlib.import_module(f"cleartrace.org.{module}"), name)
