"""A small subset of go-bexpr, Consul's ``?filter=`` language.

Supported: ``Sel == "v"``, ``Sel != "v"``, ``"v" in Sel``, ``"v" not in Sel``, ``Sel is empty``,
``Sel is not empty``, ``and``, ``or``, ``not``, parentheses. A selector is a dotted path into the
JSON object being filtered (``Service``, ``Tags``, ``Meta.env``, ``Service.Tags``). Anything else
is refused with Consul's 400, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from accord.core.errors import ConsulApiError

__all__ = ["compile_filter"]

Predicate = Callable[[dict[str, Any]], bool]
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<op>==|!=|\(|\))|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)|(?P<num>-?\d+(?:\.\d+)?))'
)


def compile_filter(text: str | None) -> Predicate | None:
    """The predicate of ``text``, or None for no filter; a malformed expression is Consul's 400."""
    if text is None or not text.strip():
        return None
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    predicate = parser.expression()
    if parser.pos != len(tokens):
        raise _invalid(text, f"unexpected {tokens[parser.pos][1]!r}")
    return predicate


def _invalid(text: str, why: str) -> ConsulApiError:
    return ConsulApiError(400, f"Failed to create boolean expression evaluator: {why} in {text!r}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _invalid(text, f"unexpected character at {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _literal(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _select(obj: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return False, None
        if part in obj:
            obj = obj[part]
        else:
            return False, None
    return True, obj


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _word(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1] == word:
            self.pos += 1
            return True
        return False

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _invalid(self.text, "unexpected end of expression")
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        left = self._and()
        while self._word("or"):
            right = self._and()
            left = (lambda a, b: lambda obj: a(obj) or b(obj))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._word("and"):
            right = self._unary()
            left = (lambda a, b: lambda obj: a(obj) and b(obj))(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._word("not"):
            inner = self._unary()
            return lambda obj: not inner(obj)
        token = self._peek()
        if token == ("op", "("):
            self.pos += 1
            inner = self.expression()
            if self._next() != ("op", ")"):
                raise _invalid(self.text, "missing )")
            return inner
        return self._match()

    def _value(self) -> str:
        kind, value = self._next()
        if kind == "str":
            return _literal(value)
        if kind in ("num", "word"):
            return value
        raise _invalid(self.text, f"expected a value, got {value!r}")

    def _match(self) -> Predicate:
        kind, value = self._next()
        if kind == "str" or kind == "num":
            literal = _literal(value) if kind == "str" else value
            negate = self._word("not")
            if not self._word("in"):
                raise _invalid(self.text, "expected 'in'")
            selector = self._selector()
            return lambda obj: _contains(obj, selector, literal) != negate
        if kind != "word":
            raise _invalid(self.text, f"unexpected {value!r}")
        selector = value
        token = self._next()
        if token == ("op", "=="):
            literal = self._value()
            return lambda obj: _equals(obj, selector, literal)
        if token == ("op", "!="):
            literal = self._value()
            return lambda obj: not _equals(obj, selector, literal)
        if token == ("word", "is"):
            negate = self._word("not")
            if not self._word("empty"):
                raise _invalid(self.text, "expected 'empty'")
            return lambda obj: _empty(obj, selector) != negate
        if token in (("word", "contains"),):
            literal = self._value()
            return lambda obj: _contains(obj, selector, literal)
        raise _invalid(self.text, f"unexpected {token[1]!r}")

    def _selector(self) -> str:
        kind, value = self._next()
        if kind != "word":
            raise _invalid(self.text, f"expected a selector, got {value!r}")
        return value


def _equals(obj: dict[str, Any], selector: str, literal: str) -> bool:
    found, value = _select(obj, selector)
    if not found or isinstance(value, dict | list):
        return False
    return _text(value) == literal


def _contains(obj: dict[str, Any], selector: str, literal: str) -> bool:
    found, value = _select(obj, selector)
    if not found or value is None:
        return False
    if isinstance(value, list):
        return any(_text(v) == literal for v in value)
    if isinstance(value, dict):
        return literal in value
    return literal in _text(value)


def _empty(obj: dict[str, Any], selector: str) -> bool:
    found, value = _select(obj, selector)
    return not found or value in (None, "", [], {})
