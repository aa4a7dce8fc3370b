"""PII benchmark: detection recall per category, and prose left alone.

Auto-redaction removes what `detect` finds and nothing else, so its recall
is the limit of the promise that no personal data leaves. This benchmark
generates a seeded corpus in eight locales (Faker for names, words,
addresses, phone numbers and IBANs; the check-digit generators below for
cards and national IDs) and prints one JSON object:

- `recall`: per category, the share of lines whose embedded item is covered,
  every letter and digit of it, by findings of its category (a password
  found as a secret, or a secret as a password, counts: both are removed);
- `plain_untouched`: the share of plain prose lines with harmless numbers
  (order numbers, versions, dates, times, quantities, prices) where nothing
  at all is found;
- the corpus size, the seed, and the seconds `detect` took.

Phone numbers are scanned with the locale's country as the region, as a
device set up in that country scans them. Faker's own phone formats are kept
only where libphonenumber deems them possible numbers of the locale's
country with at least seven significant digits (Faker prints a few
impossible ones, "+3103-9085335", and some that are not phone numbers at
all, "042-06-07").

Usage: python benchmarks/pii.py [--seed S] [--per-category N] [--show-misses N]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from faker import Faker
from stdnum import luhn
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.nl import bsn

from cleartrace.review.pii import PiiCategory, detect

C = PiiCategory
LOCALES = ("de_DE", "fr_FR", "en_GB", "en_US", "es_ES", "it_IT", "nl_NL", "pl_PL")
CATEGORIES = ("email", "phone", "payment_card", "iban", "national_id", "password", "secret")
ACCEPTED = {
    "email": {C.EMAIL},
    "phone": {C.PHONE},
    "payment_card": {C.PAYMENT_CARD},
    "iban": {C.IBAN},
    "national_id": {C.NATIONAL_ID},
    "password": {C.PASSWORD, C.SECRET},
    "secret": {C.PASSWORD, C.SECRET},
}


@dataclass(frozen=True)
class Line:
    text: str
    region: str
    category: str | None  # None: a plain line
    start: int = 0
    end: int = 0


# --- payment cards: every scheme's prefixes and lengths (ISO/IEC 7812: 12-19 digits)
_ALL_LONG = (16, 17, 18, 19)
SCHEMES: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("4",), (13, 16, 19)),  # Visa
    (("51", "52", "53", "54", "55", "2221", "2500", "2720"), (16,)),  # Mastercard
    (("34", "37"), (15,)),  # American Express
    (("36",), (14, *_ALL_LONG)),  # Diners Club International
    (("300", "305", "38"), _ALL_LONG),  # Diners Club
    (("6011", "644", "649", "65"), _ALL_LONG),  # Discover
    (("3528", "3589"), _ALL_LONG),  # JCB
    (("62",), _ALL_LONG),  # UnionPay
    (("2200", "2204"), _ALL_LONG),  # Mir
    (("5018", "5020", "5038", "6304", "6759", "6761", "6763"), (12, 13, 14, 15, *_ALL_LONG)),
)


def card_number(rnd: random.Random) -> str:
    prefixes, lengths = rnd.choice(SCHEMES)
    prefix, length = rnd.choice(prefixes), rnd.choice(lengths)
    body = prefix + "".join(rnd.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + luhn.calc_check_digit(body)
    form = rnd.random()
    if length == 15 and digits[:2] in ("34", "37") and form < 0.5:
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    if form < 0.4:
        return digits
    sep = " " if form < 0.8 else "-"
    return sep.join(digits[i : i + 4] for i in range(0, length, 4))


# --- national IDs of the supported countries, valid check digits, several forms
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"


def _digits(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(string.digits) for _ in range(n))


def us_ssn(rnd: random.Random) -> str:
    area = rnd.choice([a for a in range(1, 900) if a != 666])
    number = f"{area:03d}{rnd.randint(1, 99):02d}{rnd.randint(1, 9999):04d}"
    sep = rnd.choice(["-", "-", " ", ""])
    return f"{number[:3]}{sep}{number[3:5]}{sep}{number[5:]}"


def fr_nir(rnd: random.Random) -> str:
    dept = rnd.choice([f"{d:02d}" for d in range(1, 96) if d != 20])
    body = f"{rnd.choice('12')}{_digits(rnd, 2)}{rnd.randint(1, 12):02d}{dept}"
    body += f"{rnd.randint(1, 999):03d}{rnd.randint(1, 999):03d}"
    number = body + nir.calc_check_digits(body)
    if rnd.random() < 0.5:
        return number
    parts = (number[0], number[1:3], number[3:5], number[5:7], number[7:10], number[10:13])
    return " ".join((*parts, number[13:]))


def es_dni(rnd: random.Random) -> str:
    body = _digits(rnd, 8)
    return body + rnd.choice(["", "-"]) + dni.calc_check_digit(body)


def gb_nino(rnd: random.Random) -> str:
    while True:
        prefix = rnd.choice(_NINO_FIRST) + rnd.choice(_NINO_SECOND)
        if prefix not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d, suffix = _digits(rnd, 6), rnd.choice("ABCD")
    if rnd.random() < 0.5:
        return f"{prefix}{d}{suffix}"
    return f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {suffix}"


def _valid(rnd: random.Random, n: int, ok: Callable[[str], bool], first: str) -> str:
    while True:
        number = rnd.choice(first) + _digits(rnd, n - 1)
        if ok(number):
            return number


def nl_bsn(rnd: random.Random) -> str:
    number = _valid(rnd, 9, bsn.is_valid, "123456789")
    return number if rnd.random() < 0.6 else f"{number[:4]}.{number[4:6]}.{number[6:]}"


def de_idnr(rnd: random.Random) -> str:
    number = _valid(rnd, 11, idnr.is_valid, "123456789")
    if rnd.random() < 0.6:
        return number
    return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}"


_ITALIAN = Faker("it_IT")


def it_cf(rnd: random.Random, fake: Faker) -> str:
    """A codice fiscale, from the Italian Faker whatever the line's locale."""
    _ITALIAN.seed_instance(rnd.randrange(2**32))
    return str(_ITALIAN.ssn()).upper()


ID_BY_LOCALE: dict[str, tuple[str, Callable[[random.Random, Faker], str]]] = {
    "en_US": ("SSN", lambda r, f: us_ssn(r)),
    "fr_FR": ("numéro de sécurité sociale", lambda r, f: fr_nir(r)),
    "es_ES": ("DNI", lambda r, f: es_dni(r)),
    "it_IT": ("codice fiscale", it_cf),
    "en_GB": ("NI number", lambda r, f: gb_nino(r)),
    "nl_NL": ("BSN", lambda r, f: nl_bsn(r)),
    "de_DE": ("Steuer-ID", lambda r, f: de_idnr(r)),
}

# --- passwords after cues, in each locale's words (and the English ones everywhere)
CUES: dict[str, tuple[str, ...]] = {
    "de_DE": ("Passwort: {}", "Passwort ist {}", "Kennwort {}", "pw: {}"),
    "fr_FR": ("mot de passe : {}", "mot de passe {}", "mdp: {}"),
    "en_GB": ("password: {}", "my password is {}", "pwd {}", "passcode: {}"),
    "en_US": ("password: {}", "the password is {}", "pwd: {}", "pass: {}"),
    "es_ES": ("contraseña: {}", "la contraseña es {}", "clave: {}"),
    "it_IT": ("password: {}", "la password è {}", "parola d'ordine: {}"),
    "nl_NL": ("wachtwoord: {}", "wachtwoord is {}", "ww: {}"),
    "pl_PL": ("hasło: {}", "hasło to {}", "haslo {}"),
}
COMMON_CUES = ("login: {user} / {}", "user {user} pass {}", "pwd={}", "Password: {}")


def password(rnd: random.Random, fake: Faker) -> str:
    kind = rnd.random()
    if kind < 0.4:
        return str(fake.password(length=rnd.randint(8, 16), special_chars=rnd.random() < 0.6))
    if kind < 0.8:  # a word, a year or number, maybe a symbol: how people choose them
        word = str(fake.word()).replace(" ", "").capitalize()
        return f"{word}{rnd.randint(1, 2030)}{rnd.choice(['', '!', '?', '#', '.', '$'])}"
    return str(fake.user_name()) + str(rnd.randint(10, 999))


def secret(rnd: random.Random) -> str:
    """A random token mixing three or four character classes, typed or pasted bare."""
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#$%&*+-=?@^_~"]
    used = classes if rnd.random() < 0.6 else classes[:3]
    length = rnd.randint(12, 32)
    chars = [rnd.choice(c) for c in used]
    chars += [rnd.choice("".join(used)) for _ in range(length - len(chars))]
    rnd.shuffle(chars)
    return "".join(chars)


# --- phones: Faker's formats where possible, and the national and +CC forms of them
def phone(rnd: random.Random, fake: Faker, region: str) -> str:
    while True:
        raw = str(fake.phone_number()).split("x")[0].strip()
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        home = phonenumbers.country_code_for_region(region)
        significant = phonenumbers.national_significant_number(number)
        if number.country_code != home or len(significant) < 7:
            continue  # Faker's odd ones: "+7..." from Germany, "042-06-07"
        if not phonenumbers.is_possible_number(number):
            continue
        form = rnd.random()
        if form < 0.34:
            return raw
        fmt = phonenumbers.PhoneNumberFormat
        if form < 0.67:
            return phonenumbers.format_number(number, fmt.NATIONAL)
        if form < 0.9:
            return phonenumbers.format_number(number, fmt.INTERNATIONAL)
        return phonenumbers.format_number(number, fmt.E164)


def iban(rnd: random.Random, fake: Faker) -> str:
    number = str(fake.iban())
    if rnd.random() < 0.5:
        return number
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


# --- plain lines: prose with numbers that identify nobody
ORDER = {
    "de_DE": "Bestellung",
    "fr_FR": "commande",
    "en_GB": "order",
    "en_US": "order",
    "es_ES": "pedido",
    "it_IT": "ordine",
    "nl_NL": "bestelling",
    "pl_PL": "zamówienie",
}


def harmless(rnd: random.Random, fake: Faker, loc: str) -> str:
    options: list[Callable[[], str]] = [
        lambda: f"{ORDER[loc]} {rnd.randint(1000, 9_999_999)}",
        lambda: f"{ORDER[loc]} #{rnd.randint(100, 999_999)}",
        lambda: f"INV-{rnd.randint(2015, 2027)}-{rnd.randint(1, 99999):05d}",
        lambda: f"v{rnd.randint(0, 12)}.{rnd.randint(0, 40)}.{rnd.randint(0, 200)}",
        lambda: f"{rnd.randint(1, 3)}.{rnd.randint(0, 20)}",
        lambda: str(
            fake.date(pattern=rnd.choice(["%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d", "%m/%d/%y"]))
        ),
        lambda: f"{rnd.randint(0, 23):02d}:{rnd.choice(['00', '15', '30', '45'])}",
        lambda: f"{rnd.randint(0, 23)}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}",
        lambda: f"{rnd.randint(1, 500)} {rnd.choice(['kg', 'g', 'ml', 'km', 'm²', 'pcs', 'x'])}",
        lambda: f"{rnd.randint(1, 12)} x {rnd.choice([100, 250, 500, 750])} g",
        lambda: f"{rnd.randint(1, 9999)},{rnd.randint(0, 99):02d} €",
        lambda: f"${rnd.randint(1, 99999):,}.{rnd.randint(0, 99):02d}",
        lambda: f"{rnd.randint(1, 99)}.{rnd.randint(0, 999):03d},{rnd.randint(0, 99):02d} EUR",
        lambda: f"{rnd.randint(1, 100)} %",
        lambda: str(rnd.randint(1950, 2030)),
        lambda: f"Q{rnd.randint(1, 4)} {rnd.randint(2019, 2027)}",
        lambda: f"{rnd.randint(1, 400)}/{rnd.randint(401, 999)}",
        lambda: f"{rnd.randint(10, 999)} {ORDER[loc]}s",
    ]
    parts = [str(fake.sentence(nb_words=rnd.randint(4, 10))).rstrip(".")]
    for _ in range(rnd.randint(1, 3)):
        parts.append(rnd.choice(options)())
        parts.append(" ".join(fake.words(rnd.randint(1, 4))))
    return " ".join(parts) + rnd.choice([".", "", "!", "?"])


def embed(rnd: random.Random, fake: Faker, region: str, category: str, item: str) -> Line:
    lead = " ".join(fake.words(rnd.randint(0, 6)))
    tail = " ".join(fake.words(rnd.randint(0, 6)))
    text = f"{lead} {item}" if lead else item
    start = len(text) - len(item)
    end = len(text)
    text += rnd.choice([" ", ", ", ". ", "\n"]) + tail if tail else rnd.choice(["", ".", "\n"])
    return Line(text, region, category, start, end)


def corpus(seed: int, per_category: int) -> list[Line]:
    lines: list[Line] = []
    for index, loc in enumerate(LOCALES):
        rnd = random.Random(seed * 100 + index)
        fake = Faker(loc)
        fake.seed_instance(seed * 100 + index)
        region = loc[-2:]
        for _ in range(per_category):
            lines.append(embed(rnd, fake, region, "email", str(fake.email())))
            lines.append(embed(rnd, fake, region, "phone", phone(rnd, fake, region)))
            lines.append(embed(rnd, fake, region, "payment_card", card_number(rnd)))
            lines.append(embed(rnd, fake, region, "iban", iban(rnd, fake)))
            label, make = ID_BY_LOCALE.get(loc) or rnd.choice(list(ID_BY_LOCALE.values()))
            number = make(rnd, fake)
            if rnd.random() < 0.5:
                lines.append(embed(rnd, fake, region, "national_id", number))
            else:
                line = embed(rnd, fake, region, "national_id", f"{label} {number}")
                lines.append(
                    Line(line.text, region, "national_id", line.end - len(number), line.end)
                )
            cue = rnd.choice(CUES[loc] + COMMON_CUES)
            pw = password(rnd, fake)
            item = cue.replace("{user}", str(fake.user_name())).format(pw)
            at = item.rindex(pw)
            line = embed(rnd, fake, region, "password", item)
            lines.append(
                Line(line.text, region, "password", line.start + at, line.start + at + len(pw))
            )
            lines.append(embed(rnd, fake, region, "secret", secret(rnd)))
        for _ in range(per_category * 4):
            lines.append(Line(harmless(rnd, fake, loc), region, None))
    return lines


def covered(line: Line, categories: set[PiiCategory]) -> bool:
    found = detect(line.text, region=line.region)
    spans = [(f.start, f.end) for f in found if f.category in categories]
    return all(
        any(s <= i < e for s, e in spans)
        for i in range(line.start, line.end)
        if line.text[i].isalnum()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--per-category", type=int, default=60, help="lines per category and locale"
    )
    parser.add_argument("--show-misses", type=int, default=0, help="print N misses per category")
    args = parser.parse_args()
    lines = corpus(args.seed, args.per_category)
    hits = dict.fromkeys(CATEGORIES, 0)
    totals = dict.fromkeys(CATEGORIES, 0)
    misses: dict[str, list[str]] = {c: [] for c in (*CATEGORIES, "plain")}
    untouched = plain = 0
    started = time.perf_counter()
    for line in lines:
        if line.category is None:
            plain += 1
            found = detect(line.text, region=line.region)
            if not found:
                untouched += 1
            else:
                shown = [(f.category.value, line.text[f.start : f.end]) for f in found]
                misses["plain"].append(f"{line.region} {line.text!r} {shown}")
            continue
        totals[line.category] += 1
        if covered(line, ACCEPTED[line.category]):
            hits[line.category] += 1
        else:
            item = line.text[line.start : line.end]
            misses[line.category].append(f"{line.region} {item!r} in {line.text!r}")
    seconds = time.perf_counter() - started
    for category, missed in misses.items():
        for shown in missed[: args.show_misses]:
            print(f"miss {category}: {shown}", file=sys.stderr)
    result = {
        "benchmark": "pii",
        "seed": args.seed,
        "locales": list(LOCALES),
        "corpus_lines": len(lines),
        "recall": {c: round(hits[c] / totals[c], 3) for c in CATEGORIES},
        "plain_lines": plain,
        "plain_untouched": round(untouched / plain, 3),
        "detect_s": round(seconds, 2),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
