"""Recognizers for PII whose shape alone is ambiguous: phone numbers, payment cards, IBANs,
street addresses and dates of birth.

Each needs structure (a checksum, an issuer prefix, a country calling code, a street suffix)
or context (a "Tel." or "born" nearby), never a count of digits: reference text is full of
decimals, year ranges, timestamps, ISBNs and order numbers that a digit count takes for PII.
Pure functions over the text; each returns ``Detection`` spans.
"""

from __future__ import annotations

import re
from functools import cache

from stdnum import iban, luhn

from core.types import Detection

_CONTEXT_WINDOW = 40  # characters before a candidate that its context words may sit in


def _before(text: str, start: int, window: int = _CONTEXT_WINDOW) -> str:
    return text[max(0, start - window):start]


# --- phone numbers ---------------------------------------------------------------------------

_PHONE_CANDIDATE = re.compile(
    r"(?<![\w.,+\-/−–])"  # not the tail of a word, decimal, negative number or range
    r"(?:\+|00)?\(?\d[\d ().\-/]{5,22}\d"
    r"(?:\s*(?:x|ext\.?|extension|#)\s*\d{1,6})?"
    r"(?![\w]|[.,]\d|[\-−–/]\d)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:tel|telephone|phone|ph|mobile|mob|cell|cellphone|fax|call|contact|whatsapp|sms|text me|reach me|"
    r"ring|hotline|dial|landline|(?:my|new|old|mobile|contact) number|handy|tél|telefono|teléfono|telefone|"
    r"telefon|tlf|tfn)\b"
)
# Words after which a number is a reference, never a phone, however it is written ...
_NEVER_PHONE_CONTEXT = re.compile(r"(?i)\b(?:isbn|issn|doi|version|build|release|v|patent|sku|lot|batch)\b[\W\w]{0,12}$")
# ... and after which a phone word further back does not make a bare number a phone.
_REFERENCE_CONTEXT = re.compile(
    r"(?i)\b(?:order|claim|tracking|invoice|ref|reference|serial|ticket|case|policy|id|part|model|account|acct|"
    r"iban|card|routing)\b[\W\w]{0,12}$"
)
_MAX_NATIONAL_DIGITS = 12  # longer without a country code: a timestamp or an id
_PHONE_CONTEXT_WINDOW = 60  # "reach me at <an e-mail address> or on <number>"
_DATE_LIKE = re.compile(r"\d{1,4}([/.\-])\d{1,2}\1\d{2,4}")
_IPV4_LIKE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?|extension|#)\s*\d{1,6}$")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "CA", "PL", "PT", "IE", "BE", "CH", "AT",
                  "SE", "NO", "DK", "FI", "BR", "MX", "JP", "CN", "ZA", "NZ", "SG")


def _digit_groups(value: str) -> list[int]:
    return [len(group) for group in re.findall(r"\d+", value)]


def _structured_phone(core: str) -> bool:
    """A possible number after a country code (``+CC``, ``00CC``), or a valid national number of
    a common region written in that region's own grouping ("020 7946 0958", "(415) 555-2671")."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    international = core.startswith("+") or (core.startswith("00") and not core.startswith("000"))
    compact = re.sub(r"[^\d+]", "", core)
    if international:
        compact = "+" + compact.lstrip("+")[2 if core.startswith("00") else 0:]
    elif len(_digit_groups(core)) < 2:
        return False
    for region in (None,) if international else _PHONE_REGIONS:
        try:
            parsed = phonenumbers.parse(compact, region)
        except phonenumbers.NumberParseException:
            continue
        if international:
            return phonenumbers.is_possible_number(parsed)
        if not phonenumbers.is_valid_number(parsed):
            continue
        national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        if _digit_groups(national) == _digit_groups(core):
            return True
    return False


def find_phone_numbers(text: str) -> list[Detection]:
    """Numbers with structure (``_structured_phone``), and 7-15 digits in the words after a
    phone word ("Fax: 9498777106", "reach me at ... or on 0277949366"), extensions included.
    Never after an ISBN/version word, never a decimal, a date, a range or a bare digit run
    without a phone word; after an order/reference word only with structure."""
    found = []
    for match in _PHONE_CANDIDATE.finditer(text):
        value = match.group().rstrip(" (")
        core = _EXTENSION.sub("", value)
        digits = re.sub(r"\D", "", core)
        if not 7 <= len(digits) <= 15 or core.count(".") == 1 or _DATE_LIKE.fullmatch(core) \
                or _IPV4_LIKE.fullmatch(core):  # a decimal, a date, an IP address
            continue
        before = _before(text, match.start(), _PHONE_CONTEXT_WINDOW)
        if _NEVER_PHONE_CONTEXT.search(before):
            continue
        national_length = len(digits) <= _MAX_NATIONAL_DIGITS or core.startswith(("+", "00"))
        context = national_length and _PHONE_CONTEXT.search(before) and not _REFERENCE_CONTEXT.search(before)
        if context or _structured_phone(core):
            found.append(Detection("PHONE_NUMBER", match.start(), match.start() + len(value), 0.85 if context else 0.6))
    return found


# --- payment cards ---------------------------------------------------------------------------

_CARD_CANDIDATE = re.compile(r"(?<![\w.,\-−])\d(?:[ \-]?\d){11,18}(?![\w]|[.,]\d|[\-−]\d)")
_CARD_CONTEXT = re.compile(
    r"(?i)\b(?:card|cards|credit|debit|visa|mastercard|amex|american express|maestro|discover|jcb|diners|"
    r"unionpay|cc|pan|payment|paid|charge|charged|refund|refunded)\b"
)
# (first digits, lengths) per scheme: Visa, Mastercard (51-55, 2221-2720), Amex, Discover, JCB
# (35; assigned 3528-3589, generators use all of 35), Diners, UnionPay, Maestro (50, 56-69, 0604).
_CARD_SCHEMES = (
    (re.compile(r"4"), (13, 16, 19)),
    (re.compile(r"5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)"), (16,)),
    (re.compile(r"3[47]"), (15,)),
    (re.compile(r"6(?:011|5|4[4-9])"), (16, 17, 18, 19)),
    (re.compile(r"35"), (16, 17, 18, 19)),
    (re.compile(r"3(?:0[0-5]|[689])"), (14, 15, 16, 17, 18, 19)),
    (re.compile(r"62"), (16, 17, 18, 19)),
)
# Maestro (50, 56-69, 0604) takes any length from 12 to 19: too loose a structure on its own.
_MAESTRO = (re.compile(r"5[06-9]|6|0604"), tuple(range(12, 20)))


def _card_structure(digits: str, schemes=_CARD_SCHEMES) -> bool:
    return any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in schemes)


def find_cards(text: str) -> list[Detection]:
    """12-19 digits that pass Luhn and fit an issuer's prefix and length. A Maestro number
    (any length from 12) must also be written in groups or follow a card word."""
    found = []
    for match in _CARD_CANDIDATE.finditer(text):
        value = match.group()
        digits = re.sub(r"\D", "", value)
        if not (12 <= len(digits) <= 19 and luhn.is_valid(digits)):
            continue
        grouped_or_context = value != digits or _CARD_CONTEXT.search(_before(text, match.start(), 30))
        if _card_structure(digits) or grouped_or_context and _card_structure(digits, (_MAESTRO,)):
            found.append(Detection("CREDIT_CARD", match.start(), match.end(), 0.9 if grouped_or_context else 0.75))
    return found


# --- IBANs -----------------------------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_MIN_IBAN = 15  # Norway's, the shortest in the registry


def find_ibans(text: str) -> list[Detection]:
    """IBANs of every registry country, compact or in groups (python-stdnum checks the
    country's length and format and the mod-97 check digits). A candidate longer than its
    IBAN (the next word glued on) is trimmed back to the longest valid prefix."""
    found = []
    for match in _IBAN_CANDIDATE.finditer(text):
        value = match.group()
        ends = [index + 1 for index, char in enumerate(value) if char != " "][_MIN_IBAN - 1:]
        end = next((end for end in reversed(ends) if iban.is_valid(value[:end])), None)
        if end is not None:
            found.append(Detection("IBAN_CODE", match.start(), match.start() + end, 1.0))
    return found


# --- street addresses ------------------------------------------------------------------------

# USPS Publication 28 primary suffixes and common abbreviations, plus British, Irish,
# Australian and Indian ones.
STREET_SUFFIXES = (
    "Alley|Aly|Annex|Arcade|Avenue|Ave|Av|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brooks?|Burgs?|"
    "Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|Circles?|Cir|Cliffs?|Close|Club|Commons?|Corners?|Course|"
    "Courts?|Ct|Coves?|Creek|Crescent|Cres|Crest|Crossing|Crossroads?|Curve|Dale|Dam|Divide|Drives?|Dr|Estates?|"
    "Expressway|Expy|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|Fwy|"
    "Gardens?|Gateway|Glens?|Greens?|Groves?|Harbors?|Harbour|Haven|Heights|Hts|Highway|Hwy|Hills?|Hollow|Inlet|"
    "Islands?|Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?|Lodge|Loop|Mall|"
    "Manors?|Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parade|Parks?|"
    "Parkways?|Pkwy|Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Promenade|Radial|"
    "Ramp|Ranch|Rapids?|Rest|Ridges?|River|Road|Rd|Roads|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|"
    "Squares?|Sq|Station|Stravenue|Stream|Streets?|St|Str|Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|"
    "Trail|Trl|Tunnel|Turnpike|Underpass|Unions?|Valleys?|Viaduct|Views?|Villages?|Ville|Vista|Walk|Walks|Wall|"
    "Way|Ways|Wells?|Wharf|Wynd|Access|Centreway|Roadway|Esplanade|Marg|Nagar|Chowk|Gali"
)
_NAME_WORD = r"(?:[A-Z][\w'’.\-]*|[a-zà-ÿ]{1,3}|\d{1,3}(?:st|nd|rd|th))"
_UNIT = r"(?:,?\s(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.?|Room|Piano|Piso|Appartamento|Étage|Bus|#)\s?\w{1,6})"
_CITY_WORD = r"[A-ZÀ-Ý][^\W\d_]+(?:[\-'’][^\W\d_]+)*"
_CITY = rf"(?:{_CITY_WORD}(?:\s{_CITY_WORD}){{0,2}})"
_POSTAL_TAIL = (
    rf"(?:,\s{_CITY}(?:,\s[A-Z]{{2}})?(?:\s\d{{5}}(?:-\d{{4}})?|\s[A-Z]\d[A-Z] ?\d[A-Z]\d|\s\d{{4,6}}|\s[A-Z]{{1,2}}\d[A-Z\d]?\s?\d[A-Z]{{2}})?(?!\d)"
    rf"|,\s\d{{2}}-\d{{3}}\s{_CITY}|,\s\d{{4}}-\d{{3}}\s{_CITY}|,\s\d{{4}}\s?[A-Z]{{2}},?\s{_CITY}|,\s\d{{4,5}}\s{_CITY}"
    rf"|,\s[A-Z]{{1,2}}\d[A-Z\d]?\s?\d[A-Z]{{2}})?"
)
_NUMBER_FIRST = (
    rf"(?:(?:H\.?\s?No\.?|No\.?)\s?)?\b\d{{1,5}}[A-Za-z]?(?:[/\-]\d{{1,4}})?,?\s"
    rf"(?:{_NAME_WORD}\s){{0,3}}(?:[A-Z][\w'’\-]*\s)?(?:{STREET_SUFFIXES})\b\.?"
)
_STREET_WORD = (
    r"(?:[A-ZÀ-Ý][\wß'’\-]*(?i:stra(?:ss|ß)e|str\.|weg|gasse|allee|platz|ring|damm|steeg|straat|laan|gracht|"
    r"plein|kade|singel|dreef|hof|pad|dijk|baan)"
    r"|(?:ul\.|al\.|pl\.|os\.|plac|aleja|ulica|osiedle|Via|Incrocio|Acceso|Callejón|Cuesta|Pasadizo|Travesía|R\.|Av\.?|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Contrada|Stretto|Borgo|Strada|Calle|"
    r"Avenida|Avda\.|Paseo|Plaza|Camino|Carretera|Ronda|Glorieta|Pasaje|Rua|Travessa|Praça|Alameda|Estrada|Rue|"
    r"Boulevard|Bd|Chemin|Allée|Impasse|Quai|Cours|Place)(?:\s(?:de|del|della|da|do|dos|das|la|le|les|du|des|di|"
    r"d'|l')?\s?[A-ZÀ-Ý][\w'’\-]*){1,3})"
)
_NAME_FIRST = rf"\b{_STREET_WORD}\.?,?\s(?:\d{{1,5}}[A-Za-z]?(?:[/\-]\d{{1,4}})?|S/N)"
_MILITARY = r"\b(?:PSC|Unit|CMR)\s\d{1,5},?\sBox\s\d{1,5},?\s(?:APO|FPO|DPO)\s(?:AA|AE|AP)\s\d{5}"
_FRENCH = r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s(?:rue|avenue|boulevard|bd|chemin|allée|impasse|place|quai|cours)\s(?:[\w'’\-]+\s){0,4}[\w'’\-]+"
_ADDRESS = re.compile(rf"{_MILITARY}|(?:{_NUMBER_FIRST}|{_NAME_FIRST}|{_FRENCH}){_UNIT}?{_POSTAL_TAIL}")
_NOT_ADDRESS_BEFORE = re.compile(r"(?i)\b(?:in|by|since|until|from the year|circa|c\.)\s$|[\d.,]$")


def find_street_addresses(text: str) -> list[Detection]:
    """A house number with street words and a street suffix ("64391 Jason Expressway Suite 013,
    Taylorville, MO 18083"), or a street type with a name and number in the continental order
    ("Steckelstr. 8-1, 17801 Eberswalde", "al. Matejki 78/18", "Viale Lidia, 218"), with an
    optional unit, city and postcode."""
    found = []
    for match in _ADDRESS.finditer(text):
        if _NOT_ADDRESS_BEFORE.search(_before(text, match.start(), 12)) and match.group()[:1].isdigit():
            continue
        found.append(Detection("STREET_ADDRESS", match.start(), match.end(), 0.75))
    return found


# --- dates of birth --------------------------------------------------------------------------

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = (
    rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:\d{{4}}|\d{{2}})|\d{{1,2}}(?:st|nd|rd|th)?"
    rf"\s(?:of\s)?{_MONTHS},?\s\d{{4}}|{_MONTHS}\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}})"
)
_DATE_OF_BIRTH = re.compile(
    rf"(?i)(?:\bborn(?:\s(?:on|in))?|\bb\.|\bd\.?o\.?b\.?|\bdate\sof\sbirth|\bbirth\s?date|\bbirthday|\bgeboren|"
    rf"\bnée?|\bnato|\bnacido)[\s:\"'=,(]{{0,5}}(?:on\s)?({_DATE})(?![\d/.\-]\d)"
)


def find_dates_of_birth(text: str) -> list[Detection]:
    """A date in a common format right after a birth word (born, b., DOB, date of birth,
    birthday); other dates are not personal data on their own."""
    return [Detection("DATE_OF_BIRTH", m.start(1), m.end(1), 0.85) for m in _DATE_OF_BIRTH.finditer(text)]


STRUCTURED_FINDERS = {
    "PHONE_NUMBER": find_phone_numbers,
    "CREDIT_CARD": find_cards,
    "IBAN_CODE": find_ibans,
    "STREET_ADDRESS": find_street_addresses,
    "DATE_OF_BIRTH": find_dates_of_birth,
}


@cache
def _compiled_values(values: tuple[str, ...]) -> re.Pattern | None:
    if not values:
        return None
    alternatives = sorted((re.escape(v) for v in values if v.strip()), key=len, reverse=True)
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def find_denied(text: str, deny_list: tuple[tuple[str, tuple[str, ...]], ...]) -> list[Detection]:
    """Every occurrence of a deny-listed value, as its configured entity type."""
    found = []
    for entity, values in deny_list:
        pattern = _compiled_values(values)
        if pattern:
            found += [Detection(entity, m.start(), m.end(), 1.0) for m in pattern.finditer(text)]
    return found
