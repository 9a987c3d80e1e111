"""/api/tokens: managing tokens needs write access to acl/ (reading them, read access).

A caller creates and revokes only tokens within its own access (auth/tokens.py checks it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from fastapi import APIRouter

from accord.auth.policy import Policy, boundary_warnings, parse_rule
from accord.server import schemas as s
from accord.server.deps import Caller, Context, State, require_read, require_write

router = APIRouter(prefix="/api/tokens", tags=["tokens"], responses=s.ERROR_RESPONSES)
ACL_KEY = "acl/tokens/"


@router.get("", summary="Every token (never their secrets)")
async def list_tokens(state: State, caller: Caller) -> list[s.TokenOut]:
    require_read(caller, ACL_KEY)
    return [s.TokenOut(**token.public()) for token in state.tokens.list()]


@router.post("", status_code=201, summary="Create a token; its secret is in the answer and nowhere else")
async def create_token(state: State, caller: Caller, ctx: Context, body: s.TokenIn) -> s.TokenCreated:
    require_write(caller, ACL_KEY)
    policy = Policy(tuple(parse_rule(rule) for rule in body.rules), body.reveal_secrets)
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    token, secret = await state.tokens.create(
        body.name, policy, ttl=ttl, ctx=replace(ctx, action="token.create"), granted_by=caller
    )
    return s.TokenCreated(**token.public(), secret=secret, warnings=boundary_warnings(policy.rules))


@router.delete("/{name}", summary="Revoke a token at once on every server")
async def revoke_token(state: State, caller: Caller, ctx: Context, name: str) -> s.TokenOut:
    require_write(caller, ACL_KEY)
    token = await state.tokens.revoke(name, ctx=replace(ctx, action="token.revoke"), granted_by=caller)
    return s.TokenOut(**token.public())
