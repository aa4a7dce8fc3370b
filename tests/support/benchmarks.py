"""A benchmark of benchmarks/ run as `make bench` runs it, for the tests that
check it still works at a small size: its JSON, once it exited 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.support import REPO

__all__ = ["BENCHMARKS", "run_benchmark"]

BENCHMARKS = REPO / "benchmarks"


def run_benchmark(name: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """`python benchmarks/NAME.py ARGS` from the repository's root, with the
    package and the test helpers importable; the JSON it printed.

    Fails the test, with the end of its stderr, when it exits other than 0.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
        capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, f"benchmarks/{name}.py failed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result
