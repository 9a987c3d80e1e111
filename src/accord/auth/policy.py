"""Prefix rules: the longest matching prefix decides (deny among equals), and no match means deny.

A token may only hand on what it holds: ``Policy.covers`` says whether every key is at most as
open under another policy as under this one, which is what creating or revoking a token requires.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from accord.core.errors import PolicyError as PolicyError

Access = Literal["deny", "read", "write"]
ACCESS_LEVELS: dict[str, int] = {"deny": 0, "read": 1, "write": 2}
_RULE = re.compile(r"^(?P<prefix>[A-Za-z0-9_.\-/]*)=(?P<access>deny|read|write)$")


@dataclass(frozen=True, slots=True)
class Rule:
    prefix: str
    access: Access

    def __str__(self) -> str:
        return f"{self.prefix}={self.access}"


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules of one token. ``reveal_secrets`` only matters together with read access."""

    rules: tuple[Rule, ...]
    reveal_secrets: bool = False

    def access(self, key: str) -> Access:
        best: Rule | None = None
        for rule in self.rules:
            if key.startswith(rule.prefix) and (best is None or _outranks(rule, best)):
                best = rule
        return best.access if best else "deny"

    def covers(self, other: Policy) -> bool:
        """Whether ``other`` grants nothing this policy does not: no key more open, no reveal it lacks.

        Checking the prefixes of both rule sets is enough: for any key, the longest of those prefixes
        it starts with decides the access of both policies, so each policy's access at that prefix
        is its access at the key (keys matching no prefix are denied by both).
        """
        return not self.uncovered(other)

    def uncovered(self, other: Policy) -> list[str]:
        """What of ``other`` this policy lacks, in words, for the refusal message."""
        missing = ["reveal_secrets"] if other.reveal_secrets and not self.reveal_secrets else []
        prefixes = sorted({rule.prefix for rule in (*self.rules, *other.rules)})
        for prefix in prefixes:
            mine, theirs = self.access(prefix), other.access(prefix)
            if ACCESS_LEVELS[theirs] > ACCESS_LEVELS[mine]:
                missing.append(f"{prefix}={theirs} (this token has {mine} there)")
        return missing

    def can_read(self, key: str) -> bool:
        return ACCESS_LEVELS[self.access(key)] >= ACCESS_LEVELS["read"]

    def can_write(self, key: str) -> bool:
        return self.access(key) == "write"

    def can_reveal(self, key: str) -> bool:
        return self.reveal_secrets and self.can_read(key)

    def to_json(self) -> dict[str, Any]:
        return {"rules": [str(rule) for rule in self.rules], "reveal_secrets": self.reveal_secrets}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Policy:
        return cls(tuple(parse_rule(text) for text in body.get("rules", [])), bool(body.get("reveal_secrets")))


def _outranks(rule: Rule, best: Rule) -> bool:
    """A longer prefix wins; on equal prefixes the narrower access wins, so a deny is never overridden."""
    if len(rule.prefix) != len(best.prefix):
        return len(rule.prefix) > len(best.prefix)
    return ACCESS_LEVELS[rule.access] < ACCESS_LEVELS[best.access]


def boundary_warnings(rules: tuple[Rule, ...]) -> list[str]:
    """Rules whose prefix stops mid-segment: ``config/app`` also matches ``config/application/``."""
    return [
        f"rule {rule} does not end at a segment boundary: it also matches every key that merely starts with "
        f"{json.dumps(rule.prefix)} (e.g. {json.dumps(rule.prefix + '2/')}); "
        "end the prefix with '/' to mean that folder only"
        for rule in rules
        if rule.prefix and not rule.prefix.endswith("/")
    ]


MANAGEMENT = Policy((Rule("", "write"),), reveal_secrets=True)


def parse_rule(text: str) -> Rule:
    """``PREFIX=read|write|deny``; an empty prefix matches every key."""
    match = _RULE.match(text.strip())
    if not match:
        raise PolicyError(f"invalid rule {json.dumps(text)}: expected PREFIX=read|write|deny, e.g. config/llm/=write")
    access: Access = match["access"]  # type: ignore[assignment]
    return Rule(match["prefix"], access)
