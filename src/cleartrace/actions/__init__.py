"""The use-cases, composed once: what the CLI's commands and the tray's windows
do, as plain functions over an open `Home` (or `Paths` where nothing must be
created), in modules by subject.

- `sessions`: list (approving what the hold period approves first), review,
  redact, approve, hold, delete (ledgered, its queued bundles dropped), export;
- `consent`: give, refuse, withdraw (never blocked by a broken policy), show;
- `recording`: start, pause, resume, toggle, forget, "ended by its timer";
- `settings`: the hold period, exclusions, the open windows' classes;
- `ledger`: the consent history and its verification;
- `status`: the one `Status` the CLI prints and the tray renders.
"""

from __future__ import annotations

from cleartrace.actions import consent, ledger, recording, sessions, settings, status

__all__ = ["consent", "ledger", "recording", "sessions", "settings", "status"]
