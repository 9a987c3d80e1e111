"""Prefix rules: the longest matching prefix decides, and no match means deny."""

from __future__ import annotations

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
            if key.startswith(rule.prefix) and (best is None or len(rule.prefix) > len(best.prefix)):
                best = rule
        return best.access if best else "deny"

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


MANAGEMENT = Policy((Rule("", "write"),), reveal_secrets=True)


def parse_rule(text: str) -> Rule:
    """``PREFIX=read|write|deny``; an empty prefix matches every key."""
    match = _RULE.match(text.strip())
    if not match:
        raise PolicyError(f"invalid rule {text!r}: expected PREFIX=read|write|deny, e.g. config/llm/=write")
    access: Access = match["access"]  # type: ignore[assignment]
    return Rule(match["prefix"], access)
