"""What the tray's "Privacy policy" window shows, as Markdown.

First the policy in force with what a person must know before agreeing
(`consent.notice_text.facts`, the same facts the consent dialog and
`cleartrace consent show` give), then PRIVACY.md, which says what ClearTrace
does whatever the policy. The organisation's words are escaped: they are
shown as written, never rendered as markup or links.
"""

from __future__ import annotations

import re

from cleartrace.consent.notice_text import facts
from cleartrace.consent.policy import Policy
from cleartrace.ui import icons

__all__ = ["privacy_markdown"]

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~&])")


def _plain(text: str) -> str:
    """`text` as Markdown that shows it as written: the policy's words are never markup."""
    return _MARKDOWN.sub(r"\\\1", text)


def privacy_markdown(policy: Policy) -> str:
    """Markdown: the policy in force and its notice (what a person must know
    before agreeing), then PRIVACY.md when it is found."""
    told = [f"- **{f.label}:** {_plain(f.text)}" for f in facts(policy)]
    text = "\n".join(
        [
            "# The policy you are asked to consent under",
            "",
            _plain(f"Policy '{policy.id}', version {policy.version}"),
            "",
            _plain(policy.purpose),
            "",
            *told,
        ]
    )
    path = icons.find_file("PRIVACY.md")
    if path is not None:
        text += "\n\n---\n\n" + path.read_text(encoding="utf-8")
    return text
