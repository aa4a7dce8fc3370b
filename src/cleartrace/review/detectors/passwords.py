"""Probable passwords, recognised by where they were typed rather than by their shape."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_passwords"]

# Windows that exist to take a secret: password prompts in common languages,
# and the agents and managers that ask for one (matched on the application
# class as well as the title).
_SECRET_PROMPT = re.compile(
    r"pass(?:word|wort|phrase|code)|mot de passe|contrase[ñn]a|senha|wachtwoord|пароль"
    r"|\bunlock|authenticat|pinentry|askpass|polkit|gcr-prompter|keepass"
    r"|bitwarden|1password",
    re.IGNORECASE,
)
# Windows where a secret is typed among other things: login pages and
# terminals that run sudo or ssh. A title like "login.py - editor" matches
# too, so only fields shaped like a password count there.
_LOGIN_CONTEXT = re.compile(
    r"\blog ?in\b|\blog ?on\b|\bsign ?in\b|\bsign on\b|\banmeld|\bconnexion\b"
    r"|\biniciar sesi[óo]n\b|\bsudo\b|\bssh\b",
    re.IGNORECASE,
)
_FIELD = re.compile(r"[^\t\n]+")
_TOKEN_FIELD = re.compile(r"(?<![^\t\n])\S{4,128}(?![^\t\n])")
# A login form typed into any window: a user name or e-mail address as the
# first field of a line, Tab, then one field without spaces, ended by Tab,
# Return or the end of the stream. The user name must hold a letter, so rows
# of numbers typed into a spreadsheet do not look like logins.
_LOGIN_FORM = re.compile(
    r"^(?=[\w.+%@-]*[^\W\d_])[\w.+%@-]{2,128}\t(?P<password>\S{4,128})(?=[\t\n]|\Z)",
    re.MULTILINE,
)


def find_passwords(text: str, app: str | None, title: str | None) -> Iterator[Finding]:
    """Yield fields of `text` that are probably passwords.

    In a password prompt every field (text between Tab and Return) is one,
    confidence 0.8. In a login page or a sudo/ssh terminal, fields of 4 to
    128 characters without spaces are, confidence 0.5. Anywhere, the field
    after a user name and Tab at the start of a line is, confidence 0.4.
    """
    context = f"{app or ''}\n{title or ''}"
    if _SECRET_PROMPT.search(context):
        for m in _FIELD.finditer(text):
            if not m.group().isspace():
                yield Finding(PiiCategory.PASSWORD, m.start(), m.end(), 0.8, "context.prompt")
    elif _LOGIN_CONTEXT.search(context):
        for m in _TOKEN_FIELD.finditer(text):
            yield Finding(PiiCategory.PASSWORD, m.start(), m.end(), 0.5, "context.login")
    if "\t" in text:
        for m in _LOGIN_FORM.finditer(text):
            start, end = m.span("password")
            yield Finding(PiiCategory.PASSWORD, start, end, 0.4, "heuristic.login_form")
