"""The formats behind the built-in detectors: regex fragments and the checks a match must pass.

Written for accord from the public formats (AWS ARN and key-id layouts, RFC 5321/4291/7519, PEM,
ISO/IEC 7812 with the Luhn check).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "DOMAIN_RE",
    "EMAIL",
    "EMAIL_DOMAIN",
    "END",
    "HEX_COLON_DOT",
    "HEX_RUN",
    "IPV4",
    "IPV4_RE",
    "LOCAL_CHARS",
    "LOCAL_RE",
    "NAME",
    "PARTITION",
    "PRINCIPAL_RE",
    "REGION",
    "SECRET_KEY_KEY",
    "SEP",
    "SESSION_TOKEN_KEY",
    "THREE_DOTS",
    "V6",
    "V6_SHAPE",
    "card_number_valid",
    "iin_known",
    "ipv6_plausible",
    "luhn_valid",
    "may_hold_card",
    "secret_key_plausible",
]

# A literal first, then the look-behind: a literal start lets the regex engine jump between candidates
# (a pattern that begins with a look-behind is tried at every position of the text).
PARTITION = r"arn:(?<![A-Za-z0-9]arn:)aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]"
ACCOUNT = r"[0-9]{12}"
END = r"(?![A-Za-z0-9_\-/:])"  # an ARN resource name ends here, not in the middle of a longer one
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]{0,126}[A-Za-z0-9])?"
SEP = r"[^\S\n]*(?:[:=]|=>|\bis\b)?[^\S\n]*[\"']?"
# The keywords of the context patterns, matched ignoring case (their heads: see Detector.build). Each
# alternative begins with a letter, so a search for a head skips ahead fast (an optional group first would not).
SESSION_TOKEN_KEY = r"aws[_\-. ]?session[_\-. ]?token|x-amz-security-token|security[_\-. ]?token|session[_\-. ]?token"
SECRET_KEY_KEY = r"(?:aws[_\-. ]?secret|secret)[_\-. ]?(?:access[_\-. ]?)?key(?:[_\-. ]?id)?"
ACCOUNT_KEY = r"aws[_\-. ]?account(?:[_\-. ]?(?:id|number|no))?|account[_\-. ]?(?:id|number|no)|owner[_\-. ]?id"
_LOCAL = r"A-Za-z0-9._%+\-"
LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_EMAIL_LOCAL = rf"[{_LOCAL}]{{1,64}}"
EMAIL_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
# The look-behind makes a search try only where a run of local-part characters begins (linear, not quadratic).
EMAIL = rf"(?<![{_LOCAL}]){_EMAIL_LOCAL}@{EMAIL_DOMAIN}"
LOCAL_RE = re.compile(rf"(?<![{_LOCAL}]){_EMAIL_LOCAL}\Z")
DOMAIN_RE = re.compile(EMAIL_DOMAIN)
HEX_COLON_DOT = frozenset("0123456789abcdefABCDEF:.")
HEX_RUN = re.compile(r"[0-9A-Fa-f:.]+")
PRINCIPAL_RE = re.compile(r":(?:root|role/|user/|assumed-role/|group/|policy/)")
IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])"
IPV4_RE = re.compile(IPV4)
THREE_DOTS = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")  # what follows an address's first octet
V6_SHAPE = re.compile(r":(?::|(?:[0-9A-Fa-f]{1,4}:){5})")  # every IPv6 address has "::" or six colons
_H16 = r"[0-9A-Fa-f]{1,4}"
_V4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
V6 = "|".join(
    [
        rf"(?:{_H16}:){{7}}{_H16}",
        rf"(?:{_H16}:){{1,7}}:",
        rf"(?:{_H16}:){{1,6}}:{_H16}",
        rf"(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}",
        rf"(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}",
        rf"(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}",
        rf"(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}",
        rf"{_H16}:(?::{_H16}){{1,6}}",
        rf"::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_V4}",
        rf"(?:{_H16}:){{1,4}}:{_V4}",
        rf":(?::{_H16}){{1,7}}",
    ]
)


def luhn_valid(digits: str) -> bool:
    """The mod-10 check every payment card number satisfies (and 9 in 10 random digit strings do not)."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iin_known(digits: str) -> bool:
    """Issuer prefixes of the major card networks, so order numbers that happen to pass Luhn are left alone."""
    two, four = int(digits[:2]), int(digits[:4])
    return (
        (digits[0] == "4" and len(digits) in (13, 16, 19))
        or (51 <= two <= 55 and len(digits) == 16)
        or (2221 <= four <= 2720 and len(digits) == 16)
        or (two in (34, 37) and len(digits) == 15)
        or ((four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= len(digits) <= 19)
        or (3528 <= four <= 3589 and 16 <= len(digits) <= 19)
        or ((two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305) and len(digits) == 14)
    )


_FOLD_DIGITS = str.maketrans("123456789-", "000000000 ")


def may_hold_card(text: str) -> bool:
    """A fast superset of the card pattern for ASCII text (translate is a table copy there)."""
    if not text.isascii():
        return True
    folded = text.translate(_FOLD_DIGITS)
    return "0000 000" in folded or "0000000000000" in folded  # a dash is folded to a space


def card_number_valid(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits) and iin_known(digits)


def secret_key_plausible(value: str) -> bool:
    """A secret access key is random base64: mixed case and a digit or symbol, unlike a 40-letter word."""
    return (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() or c in "/+" for c in value)
    )


def ipv6_plausible(value: str) -> bool:
    """A real address, with at least three groups: ``a::b`` or ``dead::beef`` in code are not masked."""
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return "." in value or sum(1 for group in value.split(":") if group) >= 3
