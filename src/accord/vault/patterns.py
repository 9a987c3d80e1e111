"""The built-in detectors: what accord masks out of the box, each value type with its own token type.

Context patterns mask only their ``value`` group, so the words around a secret stay readable to the
model. The formats are in accord.vault.formats, the fast finders in accord.vault.finders.
"""

from __future__ import annotations

from accord.vault.detectors import Detector
from accord.vault.finders import (
    digits_delimited,
    find_emails,
    find_ipv4,
    find_ipv6,
    find_principals,
    ipv4_delimited,
    octets_valid,
    principal_delimited,
)
from accord.vault.formats import (
    ACCOUNT,
    ACCOUNT_KEY,
    EMAIL,
    END,
    IPV4,
    NAME,
    PARTITION,
    PRINCIPAL_RE,
    REGION,
    SECRET_KEY_KEY,
    SEP,
    SESSION_TOKEN_KEY,
    THREE_DOTS,
    V6,
    V6_SHAPE,
    card_number_valid,
    iin_known,
    ipv6_plausible,
    luhn_valid,
    may_hold_card,
    secret_key_plausible,
)

__all__ = ["BUILTIN_DETECTORS", "iin_known", "ipv6_plausible", "luhn_valid", "secret_key_plausible"]


def _arn_detector(name: str, token_type: str, service_and_resource: str, *, priority: int = 70) -> Detector:
    """An ARN detector: every ARN begins with ``arn:``, which is its trigger and the head its pattern is tried at."""
    return Detector.build(
        name,
        token_type,
        rf"{PARTITION}:{service_and_resource}",
        priority=priority,
        triggers=("arn:",),
        head="arn:",
        head_width=4,
    )


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
        rf"(?i:{SESSION_TOKEN_KEY}){SEP}(?P<value>[A-Za-z0-9/+]{{100,}}={{0,2}})(?![A-Za-z0-9/+=])",
        priority=85,
        triggers=("token",),
        ignore_case=True,
        head=SESSION_TOKEN_KEY,
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
        rf"(?i:{SECRET_KEY_KEY}){SEP}(?P<value>[A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+=])",
        priority=80,
        triggers=("secret",),
        ignore_case=True,
        validate=secret_key_plausible,
        head=SECRET_KEY_KEY,
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
    _arn_detector(
        "aws_eks_cluster_arn",
        "AWS_EKS_CLUSTER",
        rf"eks:{REGION}:{ACCOUNT}:cluster/{NAME}{END}",
    ),
    _arn_detector(
        "aws_sagemaker_endpoint_arn",
        "AWS_SAGEMAKER_ENDPOINT",
        rf"sagemaker:{REGION}:{ACCOUNT}:endpoint/{NAME}{END}",
    ),
    _arn_detector(
        "aws_sagemaker_model_arn",
        "AWS_SAGEMAKER_MODEL",
        rf"sagemaker:{REGION}:{ACCOUNT}:model/{NAME}{END}",
    ),
    _arn_detector(
        "aws_iam_role_arn",
        "AWS_IAM_ROLE",
        rf"iam::{ACCOUNT}:role/(?:[A-Za-z0-9_+=,.@\-]+/)*[A-Za-z0-9_+=,.@\-]*[A-Za-z0-9_+=@\-]{END}",
    ),
    _arn_detector(
        "aws_s3_bucket_arn",
        "AWS_S3_BUCKET",
        r"s3:::[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](?![A-Za-z0-9_.\-/:])",
    ),
    _arn_detector(
        "aws_lambda_function_arn",
        "AWS_LAMBDA_FUNCTION",
        rf"lambda:{REGION}:{ACCOUNT}:function:[A-Za-z0-9_\-]{{1,64}}(?::[A-Za-z0-9$_\-]{{1,128}})?{END}",
    ),
    _arn_detector(
        "aws_arn",
        "AWS_ARN",
        r"[a-z0-9\-]{1,64}:[a-z0-9\-]*:(?:[0-9]{12}|aws)?:[A-Za-z0-9_+=,.@\-/:*$]*[A-Za-z0-9_+=@\-/*$]",
        priority=60,
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
        EMAIL,
        priority=50,
        triggers=("@",),
        finder=find_emails,
    ),
    Detector.build(
        "aws_account_id",
        "AWS_ACCOUNT_ID",
        rf"(?i:{ACCOUNT_KEY})"
        r"[^\S\n]*[:=#]?[^\S\n]*[\"']?(?P<value>[0-9]{12}|[0-9]{4}-[0-9]{4}-[0-9]{4})(?![0-9\-])",
        priority=40,
        triggers=("account", "owner"),
        ignore_case=True,
        head=ACCOUNT_KEY,
        head_width=len("aws_account_number"),
    ),
    Detector.build(
        "aws_account_id_principal",
        "AWS_ACCOUNT_ID",
        r"[0-9]{12}(?=:(?:root\b|role/|user/|assumed-role/|group/|policy/))",
        priority=40,
        prefilter=PRINCIPAL_RE.pattern,
        boundary=principal_delimited,
        finder=find_principals,
    ),
    Detector.build(
        "credit_card",
        "CREDIT_CARD",
        r"[2-6][0-9]{3}(?:[0-9]{9,15}|(?:[ \-][0-9]{3,6}){2,4})(?![0-9])(?![ \-][0-9])",
        priority=40,
        precheck=may_hold_card,
        validate=card_number_valid,
        boundary=digits_delimited,
    ),
    Detector.build(
        "ipv6",
        "IPV6",
        rf"(?<![0-9A-Za-z:.])(?:{V6})(?![0-9A-Za-z:])",
        priority=30,
        prefilter=V6_SHAPE.pattern,
        validate=ipv6_plausible,
        finder=find_ipv6,
    ),
    Detector.build(
        "ipv4",
        "IPV4",
        IPV4,
        priority=30,
        prefilter=THREE_DOTS.pattern,
        validate=octets_valid,
        boundary=ipv4_delimited,
        finder=find_ipv4,
    ),
)
