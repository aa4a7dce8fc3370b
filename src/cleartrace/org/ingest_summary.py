"""What one ingest run did: the bundles it read, kept and rejected, and why.

`IngestSummary.as_dict()` is what `cleartrace org ingest --json` prints
(docs/dataset.md lists the rejection reasons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cleartrace.consent.coverage_arrow import REASONS
from cleartrace.org.dataset import BundleEntry

__all__ = ["IngestSummary", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A bundle not ingested: `reason` is a short id, `detail` one line for people."""

    bundle: str
    device: str | None
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "device": self.device,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class IngestSummary:
    """What one run did; `as_dict()` is what `--json` prints."""

    bundles_read: int = 0
    bundles_ingested: int = 0
    bundles_unchanged: int = 0
    devices: int = 0
    events_kept: int = 0
    actions_kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    titles_removed: dict[str, int] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    devices_rejected: dict[str, str] = field(default_factory=dict)
    files_written: int = 0
    files_removed: int = 0

    @property
    def ok(self) -> bool:
        """No bundle and no device was rejected."""
        return not self.rejected and not self.devices_rejected

    def add(self, name: str, entry: BundleEntry) -> None:
        self.bundles_ingested += 1
        self.events_kept += entry.rows
        self.actions_kept += entry.actions
        for reason, count in entry.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count
        for reason, count in entry.titles_removed.items():
            self.titles_removed[reason] = self.titles_removed.get(reason, 0) + count
        if entry.violations:
            self.violations.append(
                {
                    "bundle": name,
                    "device": entry.device,
                    "session": entry.session,
                    "events": sum(entry.violations.values()),
                    "by_category": dict(sorted(entry.violations.items())),
                }
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundles": {
                "read": self.bundles_read,
                "ingested": self.bundles_ingested,
                "unchanged": self.bundles_unchanged,
                "rejected": len(self.rejected),
            },
            "devices": self.devices,
            "devices_rejected": self.devices_rejected,
            "events": {"kept": self.events_kept, "dropped": self.dropped},
            "actions": {"kept": self.actions_kept},
            "titles_removed": self.titles_removed,
            "violations": self.violations,
            "rejected": [r.as_dict() for r in self.rejected],
            "files": {"written": self.files_written, "removed": self.files_removed},
        }
