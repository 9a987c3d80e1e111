"""Reading stored text by a JSON Schema alone, for processes that never import the declaring code.

The codec stores strings raw and everything else as JSON (``accord.core.codec``). A process that has
the Python type decodes by it; the server and the CLI only have the JSON Schema pydantic produced
for that type, which may be a union (``anyOf``), an enum, a ``$ref`` into ``$defs`` or any nesting
of those. So the reading here asks the schema the same question the codec asks the type: is there a
non-string reading of this text that the schema accepts? If not, and the schema admits a string,
the text is the string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from accord.core.codec import is_non_string_json
from accord.core.flags import flag_value

__all__ = ["NOT_TEXT", "admits_string", "parse_typed", "read_text"]

NOT_TEXT = object()  # what read_text gives for text that is neither JSON nor admitted as a string
_MAX_REF_DEPTH = 64


def admits_string(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, depth: int = 0) -> bool:
    """Whether some string can be valid for ``schema``: then text that is not JSON is read as that string."""
    root = schema if root is None else root
    if depth > _MAX_REF_DEPTH:
        return True
    if "$ref" in schema:
        return admits_string(_resolve(str(schema["$ref"]), root), root, depth + 1)
    for values in (schema.get("enum"), [schema["const"]] if "const" in schema else None):
        if values is not None:
            return any(isinstance(value, str) for value in values)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return any(admits_string(member, root, depth + 1) for member in schema[union])
    if "allOf" in schema and not all(admits_string(member, root, depth + 1) for member in schema["allOf"]):
        return False
    kind = schema.get("type")
    if kind is None:
        return True  # Any, or constraints without a type
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def read_text(text: str, schema: Mapping[str, Any], is_valid: Callable[[object], bool]) -> object:
    """The value stored text stands for: a valid non-string JSON reading first, else the text itself.

    Mirrors ``codec.decode``: ``"null"`` is None for ``str | None``, ``"5"`` is 5 for ``int | str`` and
    text for ``str``. Returns :data:`NOT_TEXT` for text that is not JSON when no string is admitted.
    """
    if is_non_string_json(text):
        parsed = json.loads(text)
        if is_valid(parsed) or not admits_string(schema):
            return parsed
        return text
    return text if admits_string(schema) else NOT_TEXT


def parse_typed(raw: str, schema: Mapping[str, Any], is_valid: Callable[[object], bool]) -> object:
    """What a person typed, the one reading every entry point uses (CLI, HTTP ``input``, ``set_input``,
    a setting's environment variable); validated by the caller.

    JSON first (surrounding whitespace allowed; no NaN/Infinity), then a yes/no spelling for a schema that
    takes a boolean but no string (``yes``, ``OFF``, ``1``: :mod:`accord.core.flags`), then the text itself
    when a string is admitted. Numbers are JSON numbers: ``5`` and ``-2.5e3``, not ``0x10``, ``1_000`` or ``+5``.
    """
    try:
        parsed: object = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        parsed = NOT_TEXT
    json_value = parsed is not NOT_TEXT and not isinstance(parsed, str)
    if json_value and is_valid(parsed):
        return parsed
    takes_text = admits_string(schema)
    flag = flag_value(raw)
    if flag is not None and not takes_text and is_valid(flag):
        return flag
    if takes_text or not json_value:
        return raw
    return parsed


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite number {name}")


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Local references only (``#/$defs/Name``), which is all pydantic writes; anything else admits all."""
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return node if isinstance(node, Mapping) else {}
