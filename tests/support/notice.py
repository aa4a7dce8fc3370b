"""An organisation's notice as tests give it: the TOML an officer writes, and its Notice."""

from __future__ import annotations

from cleartrace.consent.notice import Notice

__all__ = ["EXAMPLE_NOTICE", "EXAMPLE_TOML"]

EXAMPLE_TOML = """\
purposes = ["Train models of office workflows", "Improve keyboard shortcuts"]
dpo = "dpo@example.com"
legal_basis = "Consent, GDPR Art. 6(1)(a); you may withdraw it at any time"
recipients = ["Example GmbH research team", "Hosting: Example Cloud (processor)"]
processing_location = "Germany (EU)"
retention = "24 months after upload, then deleted"
no_performance_evaluation = true
works_agreement = "Betriebsvereinbarung KI-Daten 2026/03"

[controller]
name = "Example GmbH"
contact = "privacy@example.com, Musterweg 1, 10115 Berlin"
"""

EXAMPLE_NOTICE = Notice(
    controller_name="Example GmbH",
    controller_contact="privacy@example.com, Musterweg 1, 10115 Berlin",
    purposes=("Train models of office workflows", "Improve keyboard shortcuts"),
    dpo="dpo@example.com",
    legal_basis="Consent, GDPR Art. 6(1)(a); you may withdraw it at any time",
    recipients=("Example GmbH research team", "Hosting: Example Cloud (processor)"),
    processing_location="Germany (EU)",
    retention="24 months after upload, then deleted",
    no_performance_evaluation=True,
    works_agreement="Betriebsvereinbarung KI-Daten 2026/03",
)
