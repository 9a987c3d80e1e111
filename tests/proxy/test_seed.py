"""The seed's scenario, end to end: 12 requests through two `accord proxy` processes sharing PostgreSQL and Redis.

The seed system numbered tokens per instance, so two instances gave different resources the same token
and 1 answer in 12 came back with a token left in it. Here the requests mix OpenAI and Anthropic,
streaming and not, and the same AWS resources recur across requests and instances (half of them at
once). The upstream is a real HTTP server that echoes the masked text back in random pieces.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from accord.vault import Vault
from accord.vault._sql import tables as t
from tests.proxy.proxy_harness import TOKEN_RE, Processes, anthropic_body, openai_body, read_answer

RESOURCES = {
    "eks": [
        "arn:aws:eks:us-east-1:123456789012:cluster/production-cluster",
        "arn:aws:eks:ap-northeast-2:210987654321:cluster/staging-cluster",
        "arn:aws:eks:us-west-2:123456789012:cluster/ml-training",
    ],
    "sagemaker": [
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-detector",
        "arn:aws:sagemaker:ap-northeast-2:210987654321:endpoint/recsys-v2",
    ],
    "iam": ["arn:aws:iam::123456789012:role/EKSNodeRole", "arn:aws:iam::210987654321:role/SageMakerExecution"],
    "s3": ["arn:aws:s3:::prod-data-lake", "arn:aws:s3:::ml-artifacts-bucket"],
    "lambda": [
        "arn:aws:lambda:us-east-1:123456789012:function:ingest-events",
        "arn:aws:lambda:us-east-1:123456789012:function:resize-images:prod",
    ],
    "key": ["AKIA2E0A8F3B244C9986", "ASIAY34FZKBOKMUTVV7A"],
    "email": ["ops@example.com", "jin.park@corp.example.org"],
    "ip": ["10.0.12.34", "172.31.5.9", "2001:db8:85a3::8a2e:370:7334"],
}
EXPECTED_TYPES = {
    "eks": "AWS_EKS_CLUSTER",
    "sagemaker": "AWS_SAGEMAKER_ENDPOINT",
    "iam": "AWS_IAM_ROLE",
    "s3": "AWS_S3_BUCKET",
    "lambda": "AWS_LAMBDA_FUNCTION",
    "key": "AWS_ACCESS_KEY_ID",
    "email": "EMAIL",
    "ip": "IPV4",
}
TEMPLATE = (
    "Request {n}: EKS 클러스터 {eks} 상태를 확인해 주세요. Endpoint {sagemaker} is slow; role {iam} reads {s3} "
    "and invokes {lambda}. Access key {key} was used by {email} from {ip}. Compare with cluster {eks2}."
)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


def build_requests() -> list[tuple[str, bool, str, str | None]]:
    """(dialect, stream, text, system) for 12 requests; together they use every resource, most of them twice."""
    rng = random.Random(4)
    requests = []
    for n in range(12):
        chosen = {kind: values[(n + rng.randrange(2)) % len(values)] for kind, values in RESOURCES.items()}
        chosen["eks2"] = RESOURCES["eks"][(n + 1) % 3]
        if n % 3 == 0:
            chosen["ip"] = RESOURCES["ip"][2]
        system = f"You help the team of {RESOURCES['email'][n % 2]}." if n % 4 == 1 else None
        dialect = "openai" if n % 2 == 0 else "anthropic"
        requests.append((dialect, n % 3 != 1, TEMPLATE.format(n=n, **chosen), system))
    return requests


async def ask(client: httpx.AsyncClient, proxy: str, dialect: str, stream: bool, text: str, system: str | None) -> str:
    if dialect == "openai":
        path, body = "/v1/chat/completions", openai_body(text, stream=stream, system=system)
    else:
        path, body = "/v1/messages", anthropic_body(text, stream=stream, system=system)
    response = await client.post(proxy + path, json=body, headers={"Authorization": "Bearer sk-seed"})
    answer = read_answer(dialect, response, stream=stream)
    assert not answer.errors, answer.errors
    return answer.texts[0]


async def test_twelve_requests_two_proxies_every_answer_unmasked(procs: Processes, pg_url: str, redis_url: str) -> None:
    upstream = procs.upstream()
    proxies = [procs.proxy_child(upstream.url, pg_url, redis_url) for _ in range(2)]
    procs.start_all(proxies)
    requests = build_requests()
    originals = {
        value
        for _, _, text, system in requests
        for values in RESOURCES.values()
        for value in values
        if value in text or (system and value in system)
    }
    assert originals == {value for values in RESOURCES.values() for value in values}, "every resource is used"

    async with httpx.AsyncClient(timeout=60) as client:
        answers: list[str] = []
        # Six at once, then six more that repeat the same resources; each proxy gets both dialects.
        for wave in (requests[:6], requests[6:]):
            answers += await asyncio.gather(
                *(ask(client, proxies[(len(answers) + i) // 2 % 2].url, *request) for i, request in enumerate(wave))
            )

    unmasked = sum(answer == text for answer, (_, _, text, _) in zip(answers, requests, strict=True))
    assert unmasked == 12, [(a, r[2]) for a, r in zip(answers, requests, strict=True) if a != r[2]]
    assert not [TOKEN_RE.findall(answer) for answer in answers if TOKEN_RE.search(answer)]

    received = upstream.received()
    assert len(received) == 12
    seen_tokens: set[str] = set()
    for record in received:
        leaked = [value for value in originals if value in record["body"]]
        assert not leaked, f"the upstream saw originals {leaked}"
        seen_tokens |= set(TOKEN_RE.findall(json.dumps(json.loads(record["body"])["messages"])))
        seen_tokens |= set(TOKEN_RE.findall(json.dumps(json.loads(record["body"]).get("system", ""))))

    async with await Vault.connect(pg_url, redis_url, sweep=False) as vault:
        async with vault.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.mapping.c.token, t.mapping.c.type, t.mapping.c.number))).all()
        resolution = await vault.resolve([row.token for row in rows])
    per_original = Counter(resolution.originals.values())
    assert not resolution.missing
    assert set(per_original) == originals
    assert all(count == 1 for count in per_original.values()), "an original got more than one token"
    assert {row.token for row in rows} == seen_tokens, "the upstream saw exactly the stored tokens"
    numbers = Counter((row.type, row.number) for row in rows)
    assert all(count == 1 for count in numbers.values()), "a number was issued twice"
    for kind, values in RESOURCES.items():
        types = {row.type for row in rows if resolution.originals[row.token] in values}
        expected = {EXPECTED_TYPES[kind]} if kind != "ip" else {"IPV4", "IPV6"}
        assert types == expected, (kind, types)
