"""Probable passwords, recognised by where they were typed or by the word typed before them."""

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

# A password typed in ordinary text, after its name in one of the common
# European languages ("password: ...", "Passwort ist ...", "mot de passe :
# ...", "hasło to ..."). After a colon or "=" any word is the password;
# after a plain space or "is" only a word that holds a digit, a symbol or a
# capital past its first letter is, so "keep your password safe" and "das
# Passwort ist falsch" stay prose.
_CUE = re.compile(
    r"(?<!\w)(?:password|passwort|passwd|passcode|pass|pwd|pw|kennwort|mot de passe|mdp"
    r"|contrase[ñn]a|clave|senha|wachtwoord|ww|has[łl]o|parola d'ordine)"
    r"(?P<sep>\s*[:=]\s*|\s+(?:(?:is|ist|lautet|est|es|è|to|era|was)\s+)?)"
    r"(?P<pw>\S{4,128})",
    re.IGNORECASE,
)
# "login: alice / hunter22", "user bob / S3cret": what follows the slash.
_USER_SLASH = re.compile(
    r"(?<!\w)(?:login|user(?:name)?|benutzer(?:name)?|utilisateur|usuario|utente|gebruiker"
    r"|u[żz]ytkownik)\s*[:=]?\s*\S+\s*/\s*(?P<pw>\S{4,128})",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_NOT_A_WORD = re.compile(r"[\d\W_]|.[A-Z]")
_SENTENCE_END = ".,;"
_MIN_CUED = 4


def find_cued_passwords(text: str) -> Iterator[Finding]:
    """Yield words typed right after a password's name, or after "login: user /"."""
    for m in _CUE.finditer(text):
        start, end = _trimmed(text, *m.span("pw"))
        explicit = any(c in m.group("sep") for c in ":=")
        if end - start >= _MIN_CUED and (explicit or _not_a_word(text[start:end])):
            yield Finding(PiiCategory.PASSWORD, start, end, 0.6, "cue.password")
    for m in _USER_SLASH.finditer(text):
        start, end = _trimmed(text, *m.span("pw"))
        if end - start >= _MIN_CUED:
            yield Finding(PiiCategory.PASSWORD, start, end, 0.6, "cue.login")


def _not_a_word(token: str) -> bool:
    """A word with a letter and a digit, a symbol or an inner capital (an
    exclamation or question mark that ends the sentence does not count)."""
    core = token.rstrip("!?")
    return _LETTER.search(core) is not None and _NOT_A_WORD.search(core) is not None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """Leave out a full stop or comma that ends the sentence rather than the password."""
    if end - start > 1 and text[end - 1] in _SENTENCE_END:
        end -= 1
    return start, end


def find_passwords(text: str, app: str | None, title: str | None) -> Iterator[Finding]:
    """Yield fields of `text` that are probably passwords.

    In a password prompt every field (text between Tab and Return) is one,
    confidence 0.8. In a login page or a sudo/ssh terminal, fields of 4 to
    128 characters without spaces are, confidence 0.5. Anywhere, a word
    after a password's name ("Passwort: ...") is, confidence 0.6, and so is
    the field after a user name and Tab at the start of a line, confidence
    0.4.
    """
    context = f"{app or ''}\n{title or ''}"
    if _SECRET_PROMPT.search(context):
        for m in _FIELD.finditer(text):
            if not m.group().isspace():
                yield Finding(PiiCategory.PASSWORD, m.start(), m.end(), 0.8, "context.prompt")
    elif _LOGIN_CONTEXT.search(context):
        for m in _TOKEN_FIELD.finditer(text):
            yield Finding(PiiCategory.PASSWORD, m.start(), m.end(), 0.5, "context.login")
    yield from find_cued_passwords(text)
    if "\t" in text:
        for m in _LOGIN_FORM.finditer(text):
            start, end = m.span("password")
            yield Finding(PiiCategory.PASSWORD, start, end, 0.4, "heuristic.login_form")
