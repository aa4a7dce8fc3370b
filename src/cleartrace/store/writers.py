"""Is a session's writer still running? Told by pid plus process identity."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_token", "writer_alive"]


def process_token(pid: int) -> str | None:
    """Boot id + start time of a process: unlike its pid, never reused. None off Linux."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        start = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None
    return f"{boot}:{start.decode()}"


def writer_alive(pid: int | None, token: str | None) -> bool:
    """Whether the process that began a session still runs: same pid and, where
    /proc tells, same boot and start time (pids are reused, after a reboot
    often). In doubt, yes: compacting under a live writer breaks its appends."""
    if pid is None:
        return False
    now = process_token(pid)
    if now is not None and token:
        return now == token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: cannot tell, so assume the worst
    return True
