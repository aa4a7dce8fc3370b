"""The `cleartrace` program: the CLI, with the tray app as its default command.

The one module above both the CLI and the UI (the import-linter `layers`
contract puts it on top): the CLI knows the tray only as the callable given to
it here, so no command can reach Qt, and Qt is loaded only when the tray is
asked for — every other command starts without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cleartrace import cli
from cleartrace.errors import DisplayUnavailable

__all__ = ["main", "start_tray"]


def start_tray() -> int:
    """Start the tray app and return its exit code.

    Raises:
        DisplayUnavailable: Qt cannot load here (a missing system library).
    """
    try:
        from cleartrace.ui.app import main as tray_main
    except ImportError as exc:
        raise DisplayUnavailable(
            f"cannot start the tray: Qt does not load ({exc}); reinstall ClearTrace "
            "or install the missing system library"
        ) from exc
    return tray_main([])


def main(argv: Sequence[str] | None = None) -> int:
    """Run `cleartrace ARGS`; with no command, the tray app."""
    return cli.main(argv, tray=start_tray)
