"""API keys, tokens, private keys and other high-entropy secrets.

The patterns are detect-secrets' plugins, used directly rather than through
its scanner, which reads files and a process-wide settings singleton. Spans
come from each plugin's `denylist` (the compiled patterns detect-secrets
documents as the way to write a plugin), because `analyze_string` yields
values without positions, and for some patterns only a captured prefix
("ghp"). Each match is then confirmed by `analyze_string`, which adds a
plugin's own checks and reads no settings either. The entropy plugins
contribute their alphabets, limits and `calculate_shannon_entropy`.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from cleartrace.review.detectors.base import Finding, PiiCategory
from cleartrace.review.detectors.entropy import find_mixed_tokens

if TYPE_CHECKING:
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

__all__ = ["find_secrets"]

_KNOWN_FORMAT_CONFIDENCE = 0.95
_BASE64_CONFIDENCE = 0.6
_HEX_CONFIDENCE = 0.5  # commit hashes and checksums are hex too, and not secret
# detect-secrets' Base64 alphabet (standard and URL-safe, with padding), in
# runs of 20 or more: shorter tokens cannot reach its entropy limits anyway.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/\-_]{20,}={0,2}")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"\d")
_HEX_RUN = re.compile(r"[0-9a-fA-F]+")
_HEX_LETTER = re.compile(r"[a-fA-F]")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*-----")
_MIN_SECRET_LENGTH = 12
# Some patterns stop short of the token they found (detect-secrets' JWT
# pattern ends lazily after the payload, fixed-length ones may sit in a
# longer key): the finding runs on to the end of the token, but not over a
# full stop that ends the sentence.
_TOKEN_TAIL = re.compile(r"(?:[\w\-+/=]|\.(?=[\w\-]))*")


class _Plugins(NamedTuple):
    known: tuple[RegexBasedDetector, ...]
    private_key: RegexBasedDetector
    base64: HighEntropyStringsPlugin
    hex: HighEntropyStringsPlugin


@functools.cache
def _plugins() -> _Plugins:
    """Import detect-secrets on first use and build its plugins once.

    Importing it takes a good part of a second (it pulls in requests), which
    the tray should not pay at start. Importing it also switches on
    `logging.captureWarnings` for the whole process; that is undone here
    unless someone had switched it on before.

    Left out: BasicAuthDetector and IPPublicDetector, whose findings the
    URL and IP detectors report with tighter spans; ArtifactoryDetector,
    whose "AP" + hex prefix matches capitalised words ("APACHESERVER"); and
    KeywordDetector, which is built around source file types and yields only
    the first assignment per line.
    """
    showwarning = warnings.showwarning
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.cloudant import CloudantDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
    )
    from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
    from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.softlayer import SoftlayerDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    if warnings.showwarning is not showwarning:
        logging.captureWarnings(False)
    private_key = PrivateKeyDetector()
    known: tuple[RegexBasedDetector, ...] = (
        private_key,
        AWSKeyDetector(),
        AzureStorageKeyDetector(),
        CloudantDetector(),
        DiscordBotTokenDetector(),
        GitHubTokenDetector(),
        GitLabTokenDetector(),
        IbmCloudIamDetector(),
        IbmCosHmacDetector(),
        JwtTokenDetector(),
        MailchimpDetector(),
        NpmDetector(),
        OpenAIDetector(),
        PypiTokenDetector(),
        SendGridDetector(),
        SlackDetector(),
        SoftlayerDetector(),
        SquareOAuthDetector(),
        StripeDetector(),
        TelegramBotTokenDetector(),
        TwilioKeyDetector(),
    )
    return _Plugins(known, private_key, Base64HighEntropyString(), HexHighEntropyString())


def find_secrets(text: str) -> Iterator[Finding]:
    """Yield known-format credentials and random-looking tokens in `text`, long
    (detect-secrets' entropy limits) or short and mixing character classes."""
    plugins = _plugins()
    for plugin in plugins.known:
        name = f"detect-secrets.{type(plugin).__name__}"
        for pattern in plugin.denylist:
            for m in pattern.finditer(text):
                # The plugin's own checks on top of its pattern (a JWT's parts
                # must decode, for one) run on the match alone.
                if not any(plugin.analyze_string(m.group())):
                    continue
                start, end = _secret_span(m)
                if plugin is plugins.private_key:
                    start, end = _private_key_span(text, start, end)
                else:
                    end = _token_end(text, end)
                yield Finding(PiiCategory.SECRET, start, end, _KNOWN_FORMAT_CONFIDENCE, name)
    yield from _high_entropy(text, plugins.base64, plugins.hex)
    yield from find_mixed_tokens(text)


def _secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The span of the secret in a plugin's match.

    Patterns that need context ("aws_secret_key = '...'") capture the secret
    in a group; others capture only a prefix alternative ("(ghp|gho)_...")
    and the whole match is the secret. A group as long as a credential tells
    the first kind.
    """
    groups = [m.span(i) for i in range(1, m.re.groups + 1) if m.group(i)]
    long_groups = [(s, e) for s, e in groups if e - s >= _MIN_SECRET_LENGTH]
    return max(long_groups, key=lambda span: span[1] - span[0], default=m.span())


def _token_end(text: str, end: int) -> int:
    m = _TOKEN_TAIL.match(text, end)
    return m.end() if m else end


def _private_key_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Everything from a private key's header to its END line is key material."""
    while start > 0 and text[start - 1] == "-":
        start -= 1
    m = _KEY_END.search(text, end)
    return start, m.end() if m else len(text)


def _high_entropy(
    text: str, base64: HighEntropyStringsPlugin, hex_: HighEntropyStringsPlugin
) -> Iterator[Finding]:
    """Yield long random-looking tokens, with detect-secrets' entropy limits.

    detect-secrets looks only inside quotes because source code is full of
    long identifiers; typed text has no quotes around a pasted-in token, so
    the filter here is the shape instead: a run of 20 or more token
    characters that mixes digits with letters (and, unless it is hex, upper
    with lower case). Words, paths and snake_case names fail that before any
    entropy is computed.
    """
    for m in _TOKEN_RUN.finditer(text):
        token = m.group()
        if not _DIGIT.search(token):
            continue
        if _HEX_RUN.fullmatch(token):
            if not _HEX_LETTER.search(token):
                continue
            plugin, confidence = hex_, _HEX_CONFIDENCE
        elif _UPPER.search(token) and _LOWER.search(token):
            plugin, confidence = base64, _BASE64_CONFIDENCE
        else:
            continue
        if plugin.calculate_shannon_entropy(token) > plugin.entropy_limit:
            detector = f"detect-secrets.{type(plugin).__name__}"
            yield Finding(PiiCategory.SECRET, m.start(), m.end(), confidence, detector)
