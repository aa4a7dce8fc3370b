"""The states a session row goes through, as stored in `sessions.state`.

recording → pending (ended, waiting for review) → approved or held → uploaded;
any of them → deleted, which no reader shows (see store/deletion.py). A
`StrEnum`, so the stored text and every JSON output stay the plain words.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REVIEW_STATES", "SessionState"]


class SessionState(StrEnum):
    RECORDING = "recording"
    PENDING = "pending"
    APPROVED = "approved"
    HELD = "held"
    UPLOADED = "uploaded"
    #: The key is destroyed and the rows are going (store/deletion.py).
    DELETED = "deleted"


#: What a person's review may set a closed session to.
REVIEW_STATES = frozenset({SessionState.APPROVED, SessionState.HELD})
