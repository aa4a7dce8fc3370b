"""The one way tests run `cleartrace` as a separate process, as a user would."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["CLI", "ct"]

# The command line that starts the CLI; for tests that need a Popen (a recorder
# left running, a tray, a command whose reader goes away). The child inherits
# the test's environment: its private home and PYTHONPATH.
CLI = (sys.executable, "-m", "cleartrace")


def ct(
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `cleartrace ARGS` to completion and return its exit status and output.

    With `check` (the default) a non-zero exit fails the test with the
    command's stderr; tests about failures pass `check=False` and assert the
    exit status themselves. `env` replaces the inherited environment.
    """
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"cleartrace {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done
