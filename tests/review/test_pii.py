"""PII and secret detection over reconstructed typed text."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable

import pytest

from cleartrace.errors import UsageError
from cleartrace.review.detectors import find_emails, find_phones
from cleartrace.review.pii import Finding, PiiCategory, detect, device_region

C = PiiCategory

# Credentials are assembled from pieces so that secret scanners and push
# protection do not take this file for a leak. All of them are fake.
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
STRIPE_KEY = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PRIVATE_KEY = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
)
RANDOM_BASE64 = "kJ8mN2pQ5rT9vX3zA6cE1gH4jL7nP0sU"
RANDOM_HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"


def spans(
    text: str,
    *,
    app: str | None = None,
    title: str | None = None,
    categories: Iterable[PiiCategory] | None = None,
    region: str = "US",
) -> list[tuple[PiiCategory, str]]:
    """What `detect` found, as (category, matched text) for readable failures."""
    found = detect(text, app=app, title=title, categories=categories, region=region)
    return [(f.category, text[f.start : f.end]) for f in found]


@pytest.mark.parametrize(
    ("text", "category", "expected"),
    [
        # E-mail
        ("write to alice.smith+news@example.co.uk.", C.EMAIL, "alice.smith+news@example.co.uk"),
        ("Grüße an jürgen@beispiel.de, bis bald", C.EMAIL, "jürgen@beispiel.de"),
        ("(bob_o-neil@mail.example.org)", C.EMAIL, "bob_o-neil@mail.example.org"),
        # Phone
        ("call (415) 555-2671 today", C.PHONE, "(415) 555-2671"),
        ("my mobile is 415.555.2671", C.PHONE, "415.555.2671"),
        ("London office +44 20 7946 0958", C.PHONE, "+44 20 7946 0958"),
        ("ring +49 30 901820 later", C.PHONE, "+49 30 901820"),
        # Payment card
        ("card 4111 1111 1111 1111 exp 12/27", C.PAYMENT_CARD, "4111 1111 1111 1111"),
        ("5555-5555-5555-4444", C.PAYMENT_CARD, "5555-5555-5555-4444"),
        ("amex 378282246310005.", C.PAYMENT_CARD, "378282246310005"),
        ("amex 3782 822463 10005", C.PAYMENT_CARD, "3782 822463 10005"),
        ("discover 6011000990139424", C.PAYMENT_CARD, "6011000990139424"),
        # IBAN
        ("IBAN DE89 3704 0044 0532 0130 00.", C.IBAN, "DE89 3704 0044 0532 0130 00"),
        ("GB82WEST12345698765432", C.IBAN, "GB82WEST12345698765432"),
        ("to NL91 ABNA 0417 1643 00 please", C.IBAN, "NL91 ABNA 0417 1643 00"),
        ("BE71 0961 2345 6769 that is it", C.IBAN, "BE71 0961 2345 6769"),
        # National ID
        ("SSN 536-90-4399.", C.NATIONAL_ID, "536-90-4399"),
        ("my ssn is 536904399", C.NATIONAL_ID, "536904399"),
        ("NIR 2 95 10 99 126 111 93", C.NATIONAL_ID, "2 95 10 99 126 111 93"),
        ("DNI 12345678Z", C.NATIONAL_ID, "12345678Z"),
        ("CF RSSMRA85T10A562S", C.NATIONAL_ID, "RSSMRA85T10A562S"),
        ("NINO AB 12 34 56 C", C.NATIONAL_ID, "AB 12 34 56 C"),
        ("BSN: 111222333", C.NATIONAL_ID, "111222333"),
        ("Steuer-ID 36574261809", C.NATIONAL_ID, "36574261809"),
        # IP address
        ("ssh to 192.168.1.20.", C.IP_ADDRESS, "192.168.1.20"),
        ("addr 2001:db8::8a2e:370:7334 ok", C.IP_ADDRESS, "2001:db8::8a2e:370:7334"),
        ("link-local fe80::1", C.IP_ADDRESS, "fe80::1"),
        # URL credentials
        ("https://alice:s3cret@example.com/x", C.URL_CREDENTIALS, "alice:s3cret"),
        ("redis://:hunter22@cache:6379/0", C.URL_CREDENTIALS, ":hunter22"),
        (
            "https://api.example.com/v1?x=1&access_token=abcDEF123456",
            C.URL_CREDENTIALS,
            "abcDEF123456",
        ),
        ("example.com/reset?token=9f8e7d6c", C.URL_CREDENTIALS, "9f8e7d6c"),
        ("https://s3.example.com/f?X-Amz-Signature=ab12cd34", C.URL_CREDENTIALS, "ab12cd34"),
        # Secrets
        (f"token {GITHUB_TOKEN} ok", C.SECRET, GITHUB_TOKEN),
        (f"{STRIPE_KEY}", C.SECRET, STRIPE_KEY),
        (f"slack {SLACK_TOKEN}", C.SECRET, SLACK_TOKEN),
        (f"key {AWS_KEY_ID}.", C.SECRET, AWS_KEY_ID),
        (f"Authorization: Bearer {JWT}", C.SECRET, JWT),
        (f"paste:\n{PRIVATE_KEY}\nthanks", C.SECRET, PRIVATE_KEY),
        (f"export TOKEN={RANDOM_BASE64}", C.SECRET, RANDOM_BASE64),
        (f"digest {RANDOM_HEX}", C.SECRET, RANDOM_HEX),
    ],
)
def test_detect_finds_category_with_exact_span(
    text: str, category: PiiCategory, expected: str
) -> None:
    assert spans(text) == [(category, expected)]


@pytest.mark.parametrize(
    "text",
    [
        # Prose
        "The quick brown fox jumps over the lazy dog.",
        "Let's meet tomorrow at 10:30 to discuss the Q3 budget, ok?",
        "Please enter your password and keep your password safe.",
        "Forgot password? Reset it from the login page.",
        # Dates and times
        "2024-01-15",
        "on 15/01/2024 at 12:30:45",
        "Jan 15, 2024",
        # Version numbers
        "upgrade to version 3.11.4",
        "v1.2.3.4",
        "release 10.0.0.1 is out",
        "Python 3.11.4 (main, Jun 7 2023, 12:45:48)",
        "pip install requests==2.31.0",
        "1.2.840.113549.1.1.11",
        # Order numbers, prices, reference numbers
        "order #48213",
        "order 536904399 shipped",
        "Invoice INV-2024-000123",
        "ISBN 978-3-16-148410-0",
        "$1,299.99",
        "total: 1,234,567.89 USD",
        "€ 4.111.111,11",
        "price 4111111111111111.50",
        # Numbers that fail their check digits
        "4111 1111 1111 1112",
        "1234567812345678",
        "1234 5678 9012 3456",
        "DE89 3704 0044 0532 0130 01",
        "BSN 123456789",
        "078-05-1120",
        # Code and identifiers
        "def compute_total_price(items):\n    return sum(i.price for i in items)",
        "AbstractSingletonProxyFactoryBean2",
        "CONFIG_SOME_LONG_CONSTANT_NAME_V2",
        "test_detect_returns_findings_sorted_by_start_2024",
        "/home/alice/Documents/Projects2024/ClearTraceReviewNotes",
        "std::vector<int> v; x[1::2]",
        "550e8400-e29b-41d4-a716-446655440000",
        "git checkout 3f2a9c1",
        "characterization",
        # Addresses that identify nobody, URLs without credentials
        "127.0.0.1 and 0.0.0.0 and ::1",
        "user@localhost",
        "https://alice@example.com/profile",
        "https://example.com/search?q=cats&page=2",
        "url?key=1",
        "",
    ],
)
def test_detect_ignores_ordinary_text(text: str) -> None:
    assert spans(text) == []


def test_detect_returns_findings_sorted_by_start() -> None:
    text = "ip 10.1.2.3, mail a.b@example.com, card 4111111111111111, call +44 20 7946 0958"
    findings = detect(text)
    assert [f.category for f in findings] == [C.IP_ADDRESS, C.EMAIL, C.PAYMENT_CARD, C.PHONE]
    assert [f.start for f in findings] == sorted(f.start for f in findings)


def test_email_inside_url_credentials_is_reported_as_the_credential() -> None:
    text = "https://bob:pw@example.com/repo"
    assert [text[f.start : f.end] for f in find_emails(text)] == ["pw@example.com"]
    assert spans(text) == [(C.URL_CREDENTIALS, "bob:pw")]


def test_card_number_that_also_dials_is_reported_only_as_a_card() -> None:
    text = "4957026539262261"
    assert list(find_phones(text, "DE"))
    assert spans(text, region="DE") == [(C.PAYMENT_CARD, text)]


def test_known_token_in_a_url_parameter_is_reported_as_the_token() -> None:
    text = f"https://example.com/hook?token={GITHUB_TOKEN}"
    assert spans(text) == [(C.SECRET, GITHUB_TOKEN)]


def test_one_token_is_one_finding_not_a_pattern_plus_an_entropy_hit() -> None:
    findings = detect(JWT)
    assert [(f.start, f.end, f.detector) for f in findings] == [
        (0, len(JWT), "detect-secrets.JwtTokenDetector")
    ]


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        (None, [C.EMAIL, C.PHONE]),
        ({C.EMAIL}, [C.EMAIL]),
        ([C.PHONE, C.IBAN], [C.PHONE]),
        ((), []),
    ],
)
def test_categories_limit_what_is_reported(
    categories: set[PiiCategory] | None, expected: list[PiiCategory]
) -> None:
    text = "mail alice@example.com or call (415) 555-2671"
    assert [f.category for f in detect(text, categories=categories)] == expected


def test_a_category_switched_off_is_not_searched_for() -> None:
    text = "hunter22\n"
    assert spans(text, title="Enter password", categories=[C.EMAIL, C.SECRET]) == []
    assert spans(text, title="Enter password") == [(C.PASSWORD, "hunter22")]


def test_phone_region_reads_national_numbers() -> None:
    assert spans("call 030 901820") == []
    assert spans("call 030 901820", region="DE") == [(C.PHONE, "030 901820")]


def test_unknown_phone_region_is_a_usage_error_naming_the_region_only() -> None:
    canary = "pwcanary77"
    with pytest.raises(UsageError, match="'XX'") as caught:
        detect(canary, region="XX")
    assert canary not in str(caught.value)


def test_finding_repr_and_str_hold_no_matched_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = (
        f"pwcanary77@example.com +44 20 7946 0958 {GITHUB_TOKEN} https://u:pwcanary77@h.example\n"
    )
    findings = detect(text, title="Sign in")
    assert len(findings) >= 4
    for finding in findings:
        shown = repr(finding) + str(finding)
        assert text[finding.start : finding.end] not in shown
        assert "pwcanary77" not in shown
    assert "pwcanary77" not in caplog.text


@pytest.mark.parametrize(
    ("start", "end", "confidence"),
    [(3, 3, 0.5), (-1, 2, 0.5), (0, 2, 1.5), (0, 2, -0.1)],
)
def test_finding_rejects_empty_spans_and_confidence_outside_0_1(
    start: int, end: int, confidence: float
) -> None:
    with pytest.raises(ValueError, match="finding"):
        Finding(C.EMAIL, start, end, confidence, "test")


@pytest.mark.parametrize(
    ("app", "title"),
    [
        ("pinentry-gtk-2", "Enter passphrase"),
        ("Gcr-prompter", "Unlock Keyring"),
        ("polkit-gnome-authentication-agent-1", "Authenticate"),
        ("firefox", "Passwort eingeben"),
        ("firefox", "Saisir le mot de passe"),
        ("firefox", "Introduzca la contraseña"),
        ("KeePassXC", "Passwords.kdbx"),
    ],
)
def test_everything_typed_in_a_password_prompt_is_a_password(app: str, title: str) -> None:
    text = "correct horse battery staple\n"
    findings = detect(text, app=app, title=title)
    assert [(f.category, text[f.start : f.end], f.confidence) for f in findings] == [
        (C.PASSWORD, "correct horse battery staple", 0.8)
    ]


@pytest.mark.parametrize(
    ("app", "title"),
    [
        ("firefox", "Sign in – Google Accounts"),
        ("firefox", "Log in to GitHub"),
        ("firefox", "Anmelden - Sparkasse"),
        ("xterm", "sudo apt upgrade"),
        ("xterm", "ssh alice@server"),
    ],
)
def test_in_a_login_window_each_field_without_spaces_is_a_password(app: str, title: str) -> None:
    text = "alice\tTr0ub4dor&3\nls -la\n"
    found = [
        (f.category, text[f.start : f.end], f.confidence)
        for f in detect(text, app=app, title=title)
    ]
    assert found == [(C.PASSWORD, "alice", 0.5), (C.PASSWORD, "Tr0ub4dor&3", 0.5)]


def test_in_a_login_window_an_email_field_stays_an_email() -> None:
    text = "alice@example.com\tTr0ub4dor&3\n"
    assert spans(text, app="firefox", title="Sign in") == [
        (C.EMAIL, "alice@example.com"),
        (C.PASSWORD, "Tr0ub4dor&3"),
    ]


def test_editing_a_file_named_login_flags_no_code() -> None:
    text = "def login(user):\n    return check(user.name, user.secret)\n"
    assert spans(text, app="code", title="login.py - Visual Studio Code") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice\thunter22\n", "hunter22"),
        ("search terms\nbob.smith@example.org\tS3cret!pw\tsubmit", "S3cret!pw"),
        ("carol\tpassw0rd", "passw0rd"),
    ],
)
def test_field_after_user_name_and_tab_is_a_probable_password(text: str, expected: str) -> None:
    findings = [f for f in detect(text) if f.category is C.PASSWORD]
    assert [(text[f.start : f.end], f.confidence) for f in findings] == [(expected, 0.4)]


@pytest.mark.parametrize(
    "text",
    [
        "Name\tAlice Smith\n",  # a spreadsheet row: the second field has spaces
        "1200\t3400\n",  # numbers, not a user name
        "\tindented code\n",
        "hello alice\thunter22\n",  # the user name is not the first field of the line
        "alice\tpw\n",  # too short for a password
    ],
)
def test_tab_separated_text_that_is_not_a_login_form_is_not_a_password(text: str) -> None:
    assert spans(text) == []


def test_loading_detect_secrets_leaves_warning_capture_alone() -> None:
    code = (
        "import warnings\n"
        "before = warnings.showwarning\n"
        "from cleartrace.review.pii import detect\n"
        "detect('x')\n"
        "assert warnings.showwarning is before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"LANG": "de_DE.UTF-8"}, "DE"),
        ({"LANG": "en_GB.UTF-8", "LC_TELEPHONE": "fr_FR.UTF-8"}, "FR"),
        ({"LC_ALL": "nl_NL@euro", "LANG": "de_DE.UTF-8"}, "NL"),
        ({"LANG": "C.UTF-8"}, "US"),
        ({}, "US"),
    ],
)
def test_the_device_dials_from_the_country_its_locale_names(
    env: dict[str, str], region: str
) -> None:
    assert device_region(env) == region


def test_a_national_number_is_read_in_the_devices_country(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LC_ALL", "LC_TELEPHONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    text = "ruf mich an: 030 12345678"
    assert [f.category for f in detect(text)] == [PiiCategory.PHONE]
    assert detect(text) == detect(text, region="DE")
