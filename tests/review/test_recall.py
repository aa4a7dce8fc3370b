"""Detection recall: personal data written the ways people write it, and the
harmless numbers and words beside it that must stay untouched."""

from __future__ import annotations

import pytest

from cleartrace.review.pii import PiiCategory, detect

C = PiiCategory


def spans(text: str, region: str = "US") -> list[tuple[PiiCategory, str]]:
    return [(f.category, text[f.start : f.end]) for f in detect(text, region=region)]


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        # Well-formed but not assigned: the area code 591 is not in service.
        ("call (591) 341-7776 today", "US", "(591) 341-7776"),
        ("ring 591-341-7776", "US", "591-341-7776"),
        ("mobil +49 174423930 bitte", "DE", "+49 174423930"),
        # National formats as each country writes them, with its trunk prefix.
        ("Tel. 08411 549427 ab 9 Uhr", "DE", "08411 549427"),
        ("früher Spiel (01636) 895217", "DE", "(01636) 895217"),
        ("appelez le 01 83 41 77 76", "FR", "01 83 41 77 76"),
        ("bel (0648)-636953", "NL", "(0648)-636953"),
        ("ring 0115 496 0914", "GB", "0115 496 0914"),
        # Countries without a trunk prefix: the digit groups say "phone".
        ("llama al 977 429 777", "ES", "977 429 777"),
        ("zadzwoń 574 733 801", "PL", "574 733 801"),
        ("chiama 347 812 3456", "IT", "347 812 3456"),
        # International, whatever the device's region.
        ("+33 1 83 41 77 76", "DE", "+33 1 83 41 77 76"),
        ("+48536885662", "US", "+48536885662"),
    ],
)
def test_possible_phone_numbers_are_found(text: str, region: str, expected: str) -> None:
    assert spans(text, region) == [(C.PHONE, expected)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("maestro 501812345673 ok", "501812345673"),  # 12 digits
        ("card 3769-1618-1798-433", "3769-1618-1798-433"),  # Amex written in fours
        ("diners 3653 2699 0310 68", "3653 2699 0310 68"),  # 14 digits in fours
        ("mir 2204-4532-7023-1431-79", "2204-4532-7023-1431-79"),  # 18 digits
        ("visa 4111 1111 1111 1111 003", "4111 1111 1111 1111 003"),  # 19 digits
        ("jcb 3528000700000000002", None),  # 19 digits, JCB
    ],
)
def test_cards_of_every_length_and_scheme_are_found(text: str, expected: str | None) -> None:
    number = expected or text.split()[-1]
    assert spans(text) == [(C.PAYMENT_CARD, number)]


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        # German tax ID: bare, and grouped as printed on the letter.
        ("meine Nummer 24537709688, bitte", "DE", "24537709688"),
        ("Fenster 65 309 174 250. Meer", "DE", "65 309 174 250"),
        # Dutch BSN without its name, bare and dotted.
        ("nummer 111222333 graag", "NL", "111222333"),
        ("nummer 1112.22.333 graag", "NL", "1112.22.333"),
        # US SSN with spaces, and bare on a device set up in the US.
        ("it is 536 90 4399 ok", "US", "536 90 4399"),
        ("it is 536904399 ok", "US", "536904399"),
        ("numéro 295109912611193", "FR", "295109912611193"),
        ("DNI 12345678-Z", "ES", "12345678-Z"),
    ],
)
def test_national_ids_are_found_without_their_name(text: str, region: str, expected: str) -> None:
    assert spans(text, region) == [(C.NATIONAL_ID, expected)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my password is Tr0ub4dor&3 ok", "Tr0ub4dor&3"),
        ("password: hunter2", "hunter2"),
        ("pwd Sommer2024!", "Sommer2024!"),
        ("Passwort: OV7OFwpz9c\nweiter", "OV7OFwpz9c"),
        ("das Passwort ist serge45254 mich", "serge45254"),
        ("Kennwort Katze77", "Katze77"),
        ("mot de passe : Chat1234.", "Chat1234"),
        ("la contraseña es Gato2020#", "Gato2020#"),
        ("wachtwoord: Fiets99x", "Fiets99x"),
        ("hasło to Kot2021!", "Kot2021!"),
        ("la password è Cane2019?", "Cane2019?"),
        ("login: alice / S3cr3tPw", "S3cr3tPw"),
        ("user bob pass janus272", "janus272"),
        ("pwd=Zx9!kLm2", "Zx9!kLm2"),
    ],
)
def test_a_password_typed_after_a_cue_is_found(text: str, expected: str) -> None:
    assert spans(text) == [(C.PASSWORD, expected)]


@pytest.mark.parametrize(
    "token",
    [
        "BeplT5-M2l$1_428aWZ!",
        "ZXw2s+D3JKfeGXTs",
        "_mWWy%_2kn*bZ7+8",
        "7z@w0H3iSTF2",
        "q8R#v2Lm!x0P",
    ],
)
def test_a_random_token_mixing_character_classes_is_a_secret(token: str) -> None:
    assert spans(f"here it is {token}, thanks") == [(C.SECRET, token)]


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("Bestellung 3472845 ist unterwegs", "DE"),
        ("order 5123847 shipped", "US"),
        ("ordine 347812345 spedito", "IT"),
        ("pedido 977429777 enviado", "ES"),
        ("Termin am 05.03.2021 um 14:30", "DE"),
        ("rendez-vous le 01/02/2024 à 09:15", "FR"),
        ("Invoice INV-2024-000123 for 1.299,99 €", "DE"),
        ("version v10.22.183 released 2024-01-15", "US"),
        ("12 x 250 g, 3 kg, 75 %", "PL"),
        ("order 536904399 shipped", "US"),
        ("Please enter your password and keep your password safe.", "US"),
        ("Forgot password? Reset it from the login page.", "US"),
        ("pass the salt and pass it on", "US"),
        ("das Passwort ist falsch", "DE"),
        ("AbstractSingletonProxyFactoryBean2 and CONFIG_LONG_NAME_V2", "US"),
        ("550e8400-e29b-41d4-a716-446655440000", "US"),
        ("/home/alice/Documents/Projects2024/ClearTraceReviewNotes", "US"),
        ("https://example.com/search?q=cats&page=2", "US"),
        ("INV-2024-00123 Q3-2024 v2.1.0-rc1 ISBN 978-3-16-148410-0", "US"),
        ("McDonald's iPhone15Pro COVID-19 MyDocuments2024 getUserById2", "US"),
        ("pip install requests==2.31.0 numpy>=1.26.4 'Django<5.0'", "US"),
    ],
)
def test_harmless_numbers_and_words_are_not_flagged(text: str, region: str) -> None:
    assert spans(text, region) == []
