"""OpenAI chat completions: which request fields the model reads, errors in OpenAI's shape, and the
streamed answer (one text stream per choice's content and per tool call's arguments)."""

from __future__ import annotations

import json
from typing import Any

from accord.proxy.dialect import WireFormat
from accord.proxy.sse import SseEvent
from accord.proxy.texts import BadRequestError, StreamText, Texts, Unmasker, dump_json

__all__ = ["OPENAI", "OpenAIStream", "collect", "error_body", "error_event"]

_TEMPLATE_KEYS = ("id", "object", "created", "model", "system_fingerprint", "service_tier")


def collect(body: dict[str, Any], texts: Texts) -> None:
    """Every text the model reads: message contents (strings or text parts), tool results, tool-call arguments."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list of message objects")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequestError(f"{where} must be an object with a string 'role'")
        _content(message, where, texts)
        _tool_calls(message, where, texts)


def _content(message: dict[str, Any], where: str, texts: Texts) -> None:
    content = message.get("content")
    if content is None:
        return
    if isinstance(content, str):
        texts.add(message, "content")
        return
    if not isinstance(content, list):
        raise BadRequestError(f"{where}.content must be a string, a list of content parts, or null")
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            raise BadRequestError(f"{where}.content[{index}] must be an object with a string 'type'")
        if kind in ("text", "refusal"):
            if not isinstance(part.get(kind), str):
                raise BadRequestError(f"{where}.content[{index}].{kind} must be a string")
            texts.add(part, kind)


def _tool_calls(message: dict[str, Any], where: str, texts: Texts) -> None:
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise BadRequestError(f"{where}.tool_calls must be a list")
    functions = [(f"{where}.tool_calls[{i}]", call) for i, call in enumerate(calls or [])]
    if message.get("function_call") is not None:
        functions.append((f"{where}.function_call", {"function": message["function_call"]}))
    for place, call in functions:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise BadRequestError(f"{place} must be an object with a 'function' object")
        if function.get("arguments") is None:
            continue
        if not isinstance(function["arguments"], str):
            raise BadRequestError(f"{place}.function.arguments must be a string (JSON text)")
        texts.add_json_text(function, "arguments")


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "proxy_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_event(message: str, code: str) -> SseEvent:
    return SseEvent.of(json.dumps(error_body(504, message, code)))


class OpenAIStream:
    """Rewrites ``chat.completion.chunk`` events; held-back text goes out with the choice's finishing chunk."""

    def __init__(self, unmasker: Unmasker) -> None:
        self._unmasker = unmasker
        self._streams: dict[tuple[int, str, int], StreamText] = {}
        self._template: dict[str, Any] = {"object": "chat.completion.chunk"}

    def rewrite(self, event: SseEvent) -> list[SseEvent]:
        data = event.data
        if data is None:
            return [event]
        if data.strip() == "[DONE]":
            return [*self.finish(), event]
        try:
            chunk = json.loads(data)
        except ValueError:
            return [event]
        if not isinstance(chunk, dict):
            return [event]
        self._template.update((key, chunk[key]) for key in _TEMPLATE_KEYS if key in chunk)
        changed = False
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                changed = self._choice(choice) or changed
        if "error" in chunk:
            changed = self._unmasker.in_place(chunk) or changed
        return [event.with_data(dump_json(chunk))] if changed else [event]

    def finish(self) -> list[SseEvent]:
        """Whatever is still held back (a stream that ended without a finish_reason), as one last chunk."""
        choices = [choice for index in sorted({key[0] for key in self._streams}) if (choice := self._flush(index))]
        if not choices:
            return []
        return [SseEvent.of(dump_json({**self._template, "choices": choices}))]

    def _choice(self, choice: dict[str, Any]) -> bool:
        index = choice.get("index", 0)
        if not isinstance(index, int):
            return False
        delta = choice.get("delta")
        changed = False
        if isinstance(delta, dict):
            for kind in ("content", "refusal"):
                if isinstance(delta.get(kind), str):
                    new = self._stream(index, kind, 0).feed(delta[kind])
                    changed = changed or new != delta[kind]
                    delta[kind] = new
            for position, call in enumerate(delta.get("tool_calls") or ()):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    call_index = call.get("index", position)
                    stream = self._stream(index, "tool", call_index if isinstance(call_index, int) else position)
                    new = stream.feed(function["arguments"])
                    changed = changed or new != function["arguments"]
                    function["arguments"] = new
        if choice.get("finish_reason") is not None and (held := self._flush(index)):
            choice["delta"] = _merge(delta if isinstance(delta, dict) else {}, held["delta"])
            changed = True
        return changed

    def _stream(self, choice: int, kind: str, call: int) -> StreamText:
        key = (choice, kind, call)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = StreamText(self._unmasker, json_text=kind == "tool")
        return stream

    def _flush(self, choice: int) -> dict[str, Any] | None:
        """The held-back text of one choice as a delta (and forget its streams), or None if nothing was held."""
        delta: dict[str, Any] = {}
        for key in sorted(key for key in self._streams if key[0] == choice):
            text = self._streams.pop(key).flush()
            if not text:
                continue
            if key[1] == "tool":
                delta.setdefault("tool_calls", []).append({"index": key[2], "function": {"arguments": text}})
            else:
                delta[key[1]] = delta.get(key[1], "") + text
        return {"index": choice, "delta": delta, "finish_reason": None} if delta else None


def _merge(delta: dict[str, Any], held: dict[str, Any]) -> dict[str, Any]:
    """A finishing chunk's own delta followed by the text held back before it."""
    for kind in ("content", "refusal"):
        if kind in held:
            delta[kind] = (delta.get(kind) or "") + held[kind]
    calls = delta.setdefault("tool_calls", []) if "tool_calls" in held else None
    for extra in held.get("tool_calls", ()):
        same = next((c for c in calls or () if isinstance(c, dict) and c.get("index") == extra["index"]), None)
        if same is not None and isinstance(same.get("function"), dict):
            same["function"]["arguments"] = (same["function"].get("arguments") or "") + extra["function"]["arguments"]
        elif calls is not None:
            calls.append(extra)
    return delta


OPENAI = WireFormat("openai", collect, OpenAIStream, error_body, error_event)
