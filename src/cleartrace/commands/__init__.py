"""The CLI's commands: each parses nothing, makes one domain call and prints.

Each takes the parsed `argparse.Namespace` and returns an exit code (None = 0).
"""

from cleartrace.commands.ledger import audit_verify, ledger_export, ledger_show
from cleartrace.commands.recording import (
    consent_change,
    consent_show,
    exclude_change,
    exclude_list,
    pause,
    record,
    resume,
    status,
)
from cleartrace.commands.sessions import (
    export,
    forget,
    sessions_delete,
    sessions_end_current,
    sessions_list,
    sessions_redact,
    sessions_release,
    sessions_review,
    sessions_show,
)

__all__ = [
    "audit_verify",
    "consent_change",
    "consent_show",
    "exclude_change",
    "exclude_list",
    "export",
    "forget",
    "ledger_export",
    "ledger_show",
    "pause",
    "record",
    "resume",
    "sessions_delete",
    "sessions_end_current",
    "sessions_list",
    "sessions_redact",
    "sessions_release",
    "sessions_review",
    "sessions_show",
    "status",
]
