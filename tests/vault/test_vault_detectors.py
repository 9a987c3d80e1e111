"""Built-in detectors (each type positive and negative), Luhn, overlap resolution, custom patterns, tokens."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.vault import BUILTIN_DETECTORS, LITERAL_TYPE, DetectorSet, TokenGrammar, custom_detectors, luhn_valid
from accord.vault.tokens import format_token, split_token
from accord.vault.types import InvalidInputError

DETECTORS = DetectorSet(BUILTIN_DETECTORS)
ACCOUNT = "123456789012"

POSITIVE = [
    ("AWS_ACCESS_KEY_ID", "key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_ACCESS_KEY_ID", "temp ASIAY34FZKBOKMUTVV7A,", "ASIAY34FZKBOKMUTVV7A"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "AWS_SECRET_ACCESS_KEY",
        'the secret access key is "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "AWS_SECRET_ACCESS_KEY",
        "AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_SESSION_TOKEN", "aws_session_token=" + "IQoJb3JpZ2luX2VjE" + "A" * 120, "IQoJb3JpZ2luX2VjE" + "A" * 120),
    ("AWS_SESSION_TOKEN", "token: FwoGZXIvYXdzEJr" + "b" * 90 + "==", "FwoGZXIvYXdzEJr" + "b" * 90 + "=="),
    ("AWS_ACCOUNT_ID", f"Account ID: {ACCOUNT}.", ACCOUNT),
    ("AWS_ACCOUNT_ID", "aws account 1234-5678-9012 is prod", "1234-5678-9012"),
    ("AWS_ACCOUNT_ID", f"principal {ACCOUNT}:role/Admin", ACCOUNT),
    (
        "AWS_EKS_CLUSTER",
        f"see arn:aws:eks:us-east-1:{ACCOUNT}:cluster/production-cluster.",
        f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/production-cluster",
    ),
    (
        "AWS_SAGEMAKER_ENDPOINT",
        f"(arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/churn-v2)",
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/churn-v2",
    ),
    (
        "AWS_SAGEMAKER_MODEL",
        f"model arn:aws:sagemaker:us-west-2:{ACCOUNT}:model/xgb-2024",
        f"arn:aws:sagemaker:us-west-2:{ACCOUNT}:model/xgb-2024",
    ),
    (
        "AWS_IAM_ROLE",
        f"assume arn:aws:iam::{ACCOUNT}:role/service-role/Deployer.",
        f"arn:aws:iam::{ACCOUNT}:role/service-role/Deployer",
    ),
    ("AWS_S3_BUCKET", "bucket arn:aws:s3:::my-data.bucket, ok", "arn:aws:s3:::my-data.bucket"),
    (
        "AWS_LAMBDA_FUNCTION",
        f"fn arn:aws:lambda:ap-northeast-2:{ACCOUNT}:function:resize:PROD now",
        f"arn:aws:lambda:ap-northeast-2:{ACCOUNT}:function:resize:PROD",
    ),
    ("AWS_ARN", f"queue arn:aws:sqs:us-east-1:{ACCOUNT}:orders;", f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"),
    ("AWS_ARN", "object arn:aws:s3:::bucket-1/key/a.txt", "arn:aws:s3:::bucket-1/key/a.txt"),
    ("AWS_S3_URI", "load s3://my-bucket/path/to/file.csv.", "s3://my-bucket/path/to/file.csv"),
    ("EMAIL", "mail John.Doe+ops@mail.example.co.kr, thanks", "John.Doe+ops@mail.example.co.kr"),
    ("IPV4", "host 10.0.12.254.", "10.0.12.254"),
    ("IPV6", "addr 2001:db8:85a3::8a2e:370:7334 up", "2001:db8:85a3::8a2e:370:7334"),
    ("IPV6", "mapped ::ffff:192.168.1.20 here", "::ffff:192.168.1.20"),
    (
        "JWT",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl",
    ),
    (
        "PEM_PRIVATE_KEY",
        "k:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----\nend",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----",
    ),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "amex 3782-822463-10005.", "3782-822463-10005"),
    ("CREDIT_CARD", "mc 5555555555554444", "5555555555554444"),
    ("CREDIT_CARD", "new mastercard 2223000048400011", "2223000048400011"),
    ("VAULT_LITERAL", "typed AWS_EKS_CLUSTER_001 itself", "AWS_EKS_CLUSTER_001"),
]

NEGATIVE = [
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPL too short; XAKIAIOSFODNN7EXAMPLE glued; AKIAIOSFODNN7EXAMPLEX long"),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY without context"),
    ("AWS_SECRET_ACCESS_KEY", "secret key: abcdefghijabcdefghijabcdefghijabcdefghij (one case only)"),
    ("AWS_SESSION_TOKEN", "session token: tooShort123"),
    ("AWS_ACCOUNT_ID", "order 123456789012 shipped; account id 12345678901 has 11 digits"),
    ("AWS_EKS_CLUSTER", f"arn:aws:eks:us-east-1:{ACCOUNT}:nodegroup/prod/ng-1/abc"),
    ("AWS_SAGEMAKER_ENDPOINT", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint-config/churn-v2"),
    ("AWS_SAGEMAKER_MODEL", f"arn:aws:sagemaker:us-west-2:{ACCOUNT}:model-package/xgb/1"),
    ("AWS_IAM_ROLE", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ("AWS_LAMBDA_FUNCTION", f"arn:aws:lambda:ap-northeast-2:{ACCOUNT}:layer:resize:3"),
    ("AWS_S3_BUCKET", "arn:aws:s3:::Bad_Bucket"),
    ("AWS_ARN", "arn:foo:bar and 'arn' alone"),
    ("AWS_S3_URI", "s3:// and s3://a and https://my-bucket.s3.amazonaws.com/x"),
    ("EMAIL", "user@localhost, @handle, a@b, name@domain.c"),
    ("IPV4", "256.1.1.1 and 1.2.3 and 1.2.3.4.5 and version 10.0.0.1234"),
    ("IPV6", "std::vector a::b dead::beef 12:30:45 ::1"),
    ("JWT", "eyJhbGciOi.short and eyJhbGciOiJIUzI1NiJ9.notjson.sig"),
    ("PEM_PRIVATE_KEY", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----"),
    ("CREDIT_CARD", "4111 1111 1111 1112 fails Luhn; 1234567812345670 unknown issuer; 41111111111111111111 long"),
    ("VAULT_LITERAL", "ERROR_CODE_500 HTTP_200 EMAIL_12 EMAILS_001"),
]


def found(text: str, detectors: DetectorSet = DETECTORS) -> list[tuple[str, str]]:
    return [(d.token_type, d.value) for d in detectors.detect(text)]


@pytest.mark.parametrize(("token_type", "text", "value"), POSITIVE)
def test_detects(token_type: str, text: str, value: str) -> None:
    assert (token_type, value) in found(text)


@pytest.mark.parametrize(("token_type", "text"), NEGATIVE)
def test_ignores(token_type: str, text: str) -> None:
    assert token_type not in {kind for kind, _ in found(text)}


def test_every_builtin_type_has_a_positive_and_a_negative_case() -> None:
    types = {d.token_type for d in BUILTIN_DETECTORS} | {LITERAL_TYPE}
    assert types == {case[0] for case in POSITIVE}
    assert types == {case[0] for case in NEGATIVE}


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4111111111111111", True), ("79927398713", True), ("0", True), ("4111111111111112", False), ("12a4", False)],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@given(st.text(alphabet="0123456789", min_size=2, max_size=19))
@settings(deadline=None, database=None)
def test_luhn_catches_every_single_digit_change(number: str) -> None:
    check = next(d for d in "0123456789" if luhn_valid(number + d))
    assert luhn_valid(number + check)
    for wrong in "0123456789":
        if wrong != check:
            assert not luhn_valid(number + wrong)


def test_longest_then_most_specific_match_wins() -> None:
    arn = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod"
    assert found(f"x {arn} y") == [("AWS_EKS_CLUSTER", arn)], "neither the generic ARN nor the account id"
    assert found("mail a.b@x.example.com and 10.1.2.3") == [("EMAIL", "a.b@x.example.com"), ("IPV4", "10.1.2.3")]


def test_detections_are_ordered_and_never_overlap() -> None:
    text = f"AKIAIOSFODNN7EXAMPLE arn:aws:iam::{ACCOUNT}:role/r 10.0.0.1 a@b.io s3://bkt-1/x AKIAIOSFODNN7EXAMPLE"
    detections = DETECTORS.detect(text)
    assert [d.start for d in detections] == sorted(d.start for d in detections)
    assert all(a.end <= b.start for a, b in itertools.pairwise(detections))
    assert all(text[d.start : d.end] == d.value for d in detections)


def test_a_match_followed_by_a_digit_is_not_masked() -> None:
    custom, problems = custom_detectors({"TICKET": r"TCK-[A-Z]+"})
    assert problems == []
    detectors = DetectorSet(custom)
    assert found("TCK-ABC1", detectors) == []
    assert found("TCK-ABC rest", detectors) == [("TICKET", "TCK-ABC")]


def test_custom_patterns_with_a_value_group_and_bad_entries() -> None:
    custom, problems = custom_detectors(
        {"INTERNAL_HOST": r"host=(?P<value>[a-z0-9]+\.corp)", "BROKEN": r"(unclosed", "bad type": r"x", "EMPTY": ""}
    )
    assert [d.token_type for d in custom] == ["INTERNAL_HOST"]
    assert len(problems) == 3
    assert any("BROKEN" in p and "regex" in p for p in problems)
    detectors = DetectorSet(custom)
    assert found("connect host=db1.corp now", detectors) == [("INTERNAL_HOST", "db1.corp")]
    assert "INTERNAL_HOST" in detectors.types


def test_token_format_and_parsing() -> None:
    assert format_token("EMAIL", 1) == "EMAIL_001"
    assert format_token("AWS_EKS_CLUSTER", 12345) == "AWS_EKS_CLUSTER_12345"
    assert split_token("AWS_EKS_CLUSTER_012") == ("AWS_EKS_CLUSTER", 12)


def test_grammar_finds_tokens_without_a_left_boundary_and_stops_at_digits() -> None:
    grammar = TokenGrammar({"EMAIL", "AWS_ARN", "IPV4"})
    text = "xEMAIL_001, AWS_ARN_1234 IPV4_12 EMAIL_0012b EMAILS_001"
    assert [m.token for m in grammar.finditer(text)] == ["EMAIL_001", "AWS_ARN_1234", "EMAIL_0012"]


@pytest.mark.parametrize("name", ["lower", "X_123", "_X", "A__B", "TOO_" + "LONG" * 20, ""])
def test_token_types_are_checked(name: str) -> None:
    with pytest.raises(InvalidInputError):
        TokenGrammar({name})


def test_unfinished_tail_is_only_what_could_still_become_a_token() -> None:
    grammar = TokenGrammar({"EMAIL", "AWS_EKS_CLUSTER"})
    assert grammar.unfinished_from("hello world") == len("hello world")
    assert grammar.unfinished_from("hello EM") == len("hello ")
    assert grammar.unfinished_from("hello AWS_EKS_") == len("hello ")
    assert grammar.unfinished_from("hello EMAIL_00") == len("hello ")
    assert grammar.unfinished_from("hello EMAIL_001") == len("hello "), "more digits may follow"
    assert grammar.unfinished_from("hello EMAIL_001.") == len("hello EMAIL_001.")
    assert grammar.unfinished_from("EMAIL_X") == len("EMAIL_X")
    longest = "AWS_EKS_CLUSTER_" + "1" * 19
    assert len(longest) == grammar.max_len
    assert grammar.unfinished_from("x" * 100 + longest) == 100, "a digit after it would make it no token"
    assert grammar.unfinished_from("x" * 100 + longest + "1") == 100 + len(longest) + 1, "20 digits: no token"
