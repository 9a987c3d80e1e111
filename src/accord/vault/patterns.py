"""The built-in detectors: what accord masks out of the box, each value type with its own token type.

Written for accord from the public formats (AWS ARN and key-id layouts, RFC 5321/4291/7519, PEM,
ISO/IEC 7812 with the Luhn check). Context patterns mask only their ``value`` group, so the words
around a secret stay readable to the model.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from accord.vault.detectors import Detector

__all__ = ["BUILTIN_DETECTORS", "iin_known", "ipv6_plausible", "luhn_valid", "secret_key_plausible"]

# A literal first, then the look-behind: a literal start lets the regex engine jump between candidates
# (a pattern that begins with a look-behind is tried at every position of the text).
_PARTITION = r"arn:(?<![A-Za-z0-9]arn:)aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]"
_ACCOUNT = r"[0-9]{12}"
_END = r"(?![A-Za-z0-9_\-/:])"  # an ARN resource name ends here, not in the middle of a longer one
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]{0,126}[A-Za-z0-9])?"
_SEP = r"[^\S\n]*(?:[:=]|=>|\bis\b)?[^\S\n]*[\"']?"
# The keywords of the context patterns, matched ignoring case (their heads: see Detector.build). Each
# alternative begins with a letter, so a search for a head skips ahead fast (an optional group first would not).
_SESSION_TOKEN_KEY = r"aws[_\-. ]?session[_\-. ]?token|x-amz-security-token|security[_\-. ]?token|session[_\-. ]?token"
_SECRET_KEY_KEY = r"(?:aws[_\-. ]?secret|secret)[_\-. ]?(?:access[_\-. ]?)?key(?:[_\-. ]?id)?"
_ACCOUNT_KEY = r"aws[_\-. ]?account(?:[_\-. ]?(?:id|number|no))?|account[_\-. ]?(?:id|number|no)|owner[_\-. ]?id"
_LOCAL = r"A-Za-z0-9._%+\-"
_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_EMAIL_LOCAL = rf"[{_LOCAL}]{{1,64}}"
_EMAIL_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
# The look-behind makes a search try only where a run of local-part characters begins (linear, not quadratic).
_LOCAL_RE = re.compile(rf"(?<![{_LOCAL}]){_EMAIL_LOCAL}\Z")
_DOMAIN_RE = re.compile(_EMAIL_DOMAIN)
_HEX_COLON_DOT = frozenset("0123456789abcdefABCDEF:.")
_HEX_RUN = re.compile(r"[0-9A-Fa-f:.]+")
_PRINCIPAL_RE = re.compile(r":(?:root|role/|user/|assumed-role/|group/|policy/)")
_IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])"
_IPV4_RE = re.compile(_IPV4)
_THREE_DOTS = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")  # what follows an address's first octet
_V6_SHAPE = re.compile(r":(?::|(?:[0-9A-Fa-f]{1,4}:){5})")  # every IPv6 address has "::" or six colons
_H16 = r"[0-9A-Fa-f]{1,4}"
_V4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_V6 = "|".join(
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


def _may_hold_card(text: str) -> bool:
    """A fast superset of the card pattern for ASCII text (translate is a table copy there)."""
    if not text.isascii():
        return True
    folded = text.translate(_FOLD_DIGITS)
    return "0000 000" in folded or "0000000000000" in folded  # a dash is folded to a space


def _card(value: str) -> bool:
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


def _char(text: str, index: int) -> str:
    return text[index] if 0 <= index < len(text) else ""


def _digits_delimited(text: str, start: int, end: int) -> bool:
    """Not part of a longer number: no digit (or separator and digit) right before or after."""
    before, after = _char(text, start - 1), _char(text, end)
    if before.isdigit() or after.isdigit():
        return False
    return not (before in " -" and _char(text, start - 2).isdigit()) and not (
        after in " -" and _char(text, end + 1).isdigit()
    )


def _ipv4_delimited(text: str, start: int, end: int) -> bool:
    before, after = _char(text, start - 1), _char(text, end)
    return not (
        before.isdigit() or before == "." or after.isdigit() or (after == "." and _char(text, end + 1).isdigit())
    )


def _principal_delimited(text: str, start: int, _end: int) -> bool:
    return not (_char(text, start - 1).isdigit() or _char(text, start - 1) == ":")


def _find_principals(text: str) -> Iterator[tuple[int, int]]:
    """From each ``:role/`` (and the like): the twelve digits right before it."""
    for marker in _PRINCIPAL_RE.finditer(text):
        at = marker.start()
        digits = text[max(0, at - 12) : at]
        whole = marker.group() != ":root" or not _char(text, at + 5).isalnum()
        if len(digits) == 12 and digits.isascii() and digits.isdigit() and whole:
            yield at - 12, at


def _find_ipv4(text: str) -> Iterator[tuple[int, int]]:
    """From each first dot of ``.d.d.d``: up to three digits back, then the address pattern."""
    position = 0
    while (hit := _THREE_DOTS.search(text, position)) is not None:
        start = hit.start()
        while start > 0 and hit.start() - start < 3 and "0" <= text[start - 1] <= "9":
            start -= 1
        address = _IPV4_RE.match(text, start) if start < hit.start() else None
        if address is not None:
            yield address.span()
            position = address.end()
        else:
            position = hit.start() + 1


def _octets(value: str) -> bool:
    return all(int(octet) <= 255 for octet in value.split("."))


def _find_emails(text: str) -> Iterator[tuple[int, int]]:
    """From each ``@``: the domain forwards, the local part backwards (what the email regex matches)."""
    at = text.find("@")
    while at != -1:
        domain = _DOMAIN_RE.match(text, at + 1)
        local = _LOCAL_RE.search(text, max(0, at - 64), at) if domain else None
        if domain and local and _char(text, local.start() - 1) not in _LOCAL_CHARS:
            yield local.start(), domain.end()
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)


def _find_ipv6(text: str) -> Iterator[tuple[int, int]]:
    """From the first colon of each run of hex digits, colons and dots that has an address's shape
    (``::`` or six colons): the longest such run around it, if it is an address. Runs without that
    shape (``12:30:45``, ``key: value``) are never looked at."""
    position = 0
    while (shape := _V6_SHAPE.search(text, position)) is not None:
        first = shape.start()
        while first > position and text[first - 1] in _HEX_COLON_DOT:
            first -= 1
        run = _HEX_RUN.match(text, _run_start(text, text.find(":", first)))
        assert run is not None
        start, end = run.span()
        candidate = text[start:end]
        if candidate[-1] in ".:" and not _ipv6_candidate(candidate):
            candidate, end = candidate[:-1], end - 1
        if _ipv6_candidate(candidate) and not (_char(text, start - 1).isalnum() or _char(text, end).isalnum()):
            yield start, end
        position = run.end()


def _run_start(text: str, index: int) -> int:
    limit = max(0, index - 45)
    while index > limit and text[index - 1] in _HEX_COLON_DOT:
        index -= 1
    return index


def _ipv6_candidate(value: str) -> bool:
    # Necessary conditions, much cheaper than the parser: without "::" an address has eight groups (or
    # seven and a dotted IPv4 tail), and no group has more than four hex digits.
    colons = value.count(":")
    if colons < 2 or ("::" not in value and colons != 7 and not (colons == 6 and "." in value)):
        return False
    *groups, last = value.split(":")
    if any(len(group) > 4 for group in groups) or len(last) > (15 if "." in last else 4):
        return False
    return ipv6_plausible(value)


def _arn(service_and_resource: str) -> str:
    return rf"{_PARTITION}:{service_and_resource}"


BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector.build(
        "pem_private_key",
        "PEM_PRIVATE_KEY",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{16,65536}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        priority=100,
        triggers=("-----BEGIN ",),
    ),
    Detector.build(
        "jwt",
        "JWT",
        r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*(?![A-Za-z0-9_\-])",
        priority=90,
        triggers=("eyJ",),
    ),
    Detector.build(
        "aws_session_token",
        "AWS_SESSION_TOKEN",
        rf"(?i:{_SESSION_TOKEN_KEY}){_SEP}(?P<value>[A-Za-z0-9/+]{{100,}}={{0,2}})(?![A-Za-z0-9/+=])",
        priority=85,
        triggers=("token",),
        ignore_case=True,
        head=_SESSION_TOKEN_KEY,
        head_width=len("x-amz-security-token"),
    ),
    Detector.build(
        "aws_session_token_prefix",
        "AWS_SESSION_TOKEN",
        r"(?:FwoGZXIvYXdz|IQoJb3JpZ2lu)(?<![A-Za-z0-9/+].{12})[A-Za-z0-9/+]{80,}={0,2}(?![A-Za-z0-9/+=])",
        priority=85,
        triggers=("FwoGZXIvYXdz", "IQoJb3JpZ2lu"),
    ),
    Detector.build(
        "aws_access_key_id",
        "AWS_ACCESS_KEY_ID",
        r"A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]A...)[A-Z0-9]{16}(?![A-Za-z0-9])",
        priority=80,
        prefilter=r"A(?:KIA|SIA|BIA|CCA)",
    ),
    Detector.build(
        "aws_secret_access_key",
        "AWS_SECRET_ACCESS_KEY",
        rf"(?i:{_SECRET_KEY_KEY}){_SEP}(?P<value>[A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+=])",
        priority=80,
        triggers=("secret",),
        ignore_case=True,
        validate=secret_key_plausible,
        head=_SECRET_KEY_KEY,
        head_width=len("aws_secret_access_key_id"),
    ),
    Detector.build(
        "aws_secret_access_key_pair",
        "AWS_SECRET_ACCESS_KEY",
        r"A(?:KIA|SIA)(?<![A-Za-z0-9]A...)[A-Z0-9]{16}[\s,;:|\"']{1,4}(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        priority=80,
        prefilter=r"A(?:KIA|SIA|BIA|CCA)",
        validate=secret_key_plausible,
    ),
    Detector.build(
        "aws_eks_cluster_arn",
        "AWS_EKS_CLUSTER",
        _arn(rf"eks:{_REGION}:{_ACCOUNT}:cluster/{_NAME}{_END}"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_sagemaker_endpoint_arn",
        "AWS_SAGEMAKER_ENDPOINT",
        _arn(rf"sagemaker:{_REGION}:{_ACCOUNT}:endpoint/{_NAME}{_END}"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_sagemaker_model_arn",
        "AWS_SAGEMAKER_MODEL",
        _arn(rf"sagemaker:{_REGION}:{_ACCOUNT}:model/{_NAME}{_END}"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_iam_role_arn",
        "AWS_IAM_ROLE",
        _arn(rf"iam::{_ACCOUNT}:role/(?:[A-Za-z0-9_+=,.@\-]+/)*[A-Za-z0-9_+=,.@\-]*[A-Za-z0-9_+=@\-]{_END}"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_s3_bucket_arn",
        "AWS_S3_BUCKET",
        _arn(r"s3:::[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](?![A-Za-z0-9_.\-/:])"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_lambda_function_arn",
        "AWS_LAMBDA_FUNCTION",
        _arn(rf"lambda:{_REGION}:{_ACCOUNT}:function:[A-Za-z0-9_\-]{{1,64}}(?::[A-Za-z0-9$_\-]{{1,128}})?{_END}"),
        priority=70,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_arn",
        "AWS_ARN",
        _arn(r"[a-z0-9\-]{1,64}:[a-z0-9\-]*:(?:[0-9]{12}|aws)?:[A-Za-z0-9_+=,.@\-/:*$]*[A-Za-z0-9_+=@\-/*$]"),
        priority=60,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    ),
    Detector.build(
        "aws_s3_uri",
        "AWS_S3_URI",
        r"s3://(?<![A-Za-z0-9]s3://)[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](?:/(?:[^\s\"'<>`]*[^\s\"'<>`.,;:!?)\]}])?)?",
        priority=60,
        triggers=("s3://",),
    ),
    Detector.build(
        "email",
        "EMAIL",
        rf"(?<![{_LOCAL}]){_EMAIL_LOCAL}@{_EMAIL_DOMAIN}",
        priority=50,
        triggers=("@",),
        finder=_find_emails,
    ),
    Detector.build(
        "aws_account_id",
        "AWS_ACCOUNT_ID",
        rf"(?i:{_ACCOUNT_KEY})"
        r"[^\S\n]*[:=#]?[^\S\n]*[\"']?(?P<value>[0-9]{12}|[0-9]{4}-[0-9]{4}-[0-9]{4})(?![0-9\-])",
        priority=40,
        triggers=("account", "owner"),
        ignore_case=True,
        head=_ACCOUNT_KEY,
        head_width=len("aws_account_number"),
    ),
    Detector.build(
        "aws_account_id_principal",
        "AWS_ACCOUNT_ID",
        r"[0-9]{12}(?=:(?:root\b|role/|user/|assumed-role/|group/|policy/))",
        priority=40,
        prefilter=_PRINCIPAL_RE.pattern,
        boundary=_principal_delimited,
        finder=_find_principals,
    ),
    Detector.build(
        "credit_card",
        "CREDIT_CARD",
        r"[2-6][0-9]{3}(?:[0-9]{9,15}|(?:[ \-][0-9]{3,6}){2,4})(?![0-9])(?![ \-][0-9])",
        priority=40,
        precheck=_may_hold_card,
        validate=_card,
        boundary=_digits_delimited,
    ),
    Detector.build(
        "ipv6",
        "IPV6",
        rf"(?<![0-9A-Za-z:.])(?:{_V6})(?![0-9A-Za-z:])",
        priority=30,
        prefilter=_V6_SHAPE.pattern,
        validate=ipv6_plausible,
        finder=_find_ipv6,
    ),
    Detector.build(
        "ipv4",
        "IPV4",
        _IPV4,
        priority=30,
        prefilter=_THREE_DOTS.pattern,
        validate=_octets,
        boundary=_ipv4_delimited,
        finder=_find_ipv4,
    ),
)
