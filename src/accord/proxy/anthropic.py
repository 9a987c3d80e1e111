"""Anthropic messages: which request fields the model reads, errors in Anthropic's shape, and the streamed
answer (one text stream per content block; held-back text goes out just before its ``content_block_stop``)."""

from __future__ import annotations

import json
from typing import Any

from accord.proxy.dialect import WireFormat
from accord.proxy.sse import SseEvent
from accord.proxy.texts import BadRequestError, StreamText, Texts, Unmasker, dump_json

__all__ = ["ANTHROPIC", "AnthropicStream", "collect", "error_body", "error_event"]

_ERROR_TYPES = {400: "invalid_request_error", 413: "request_too_large", 502: "api_error", 503: "api_error"}
_JSON_BLOCKS = frozenset({"tool_use", "server_tool_use"})
_DELTA_KEYS = {"text_delta": "text", "input_json_delta": "partial_json"}


def collect(body: dict[str, Any], texts: Texts) -> None:
    """Every text the model reads: system prompt, text blocks, tool_use inputs, tool results, text documents."""
    system = body.get("system")
    if isinstance(system, str):
        texts.add(body, "system")
    elif isinstance(system, list):
        _blocks(system, "system", texts)
    elif system is not None:
        raise BadRequestError("'system' must be a string or a list of content blocks")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list of message objects")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequestError(f"{where} must be an object with a string 'role'")
        content = message.get("content")
        if isinstance(content, str):
            texts.add(message, "content")
        elif isinstance(content, list):
            _blocks(content, f"{where}.content", texts)
        else:
            raise BadRequestError(f"{where}.content must be a string or a list of content blocks")


def _blocks(blocks: list[Any], where: str, texts: Texts) -> None:
    for index, block in enumerate(blocks):
        place = f"{where}[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str):
            raise BadRequestError(f"{place} must be an object with a string 'type'")
        if kind == "text":
            _string(block, "text", place)
            texts.add(block, "text")
        elif kind in _JSON_BLOCKS and "input" in block:
            texts.add_leaves(block, "input")
        elif kind == "tool_result":
            _tool_result(block, place, texts)
        elif kind == "document" and isinstance(block.get("source"), dict):
            _document(block["source"], f"{place}.source", texts)
        # image, thinking (signed by the provider), and other blocks go as they are


def _tool_result(block: dict[str, Any], place: str, texts: Texts) -> None:
    content = block.get("content")
    if isinstance(content, str):
        texts.add(block, "content")
    elif isinstance(content, list):
        _blocks(content, f"{place}.content", texts)
    elif content is not None:
        raise BadRequestError(f"{place}.content must be a string or a list of content blocks")


def _document(source: dict[str, Any], place: str, texts: Texts) -> None:
    if source.get("type") == "text":
        _string(source, "data", place)
        texts.add(source, "data")
    elif source.get("type") == "content" and isinstance(source.get("content"), list):
        _blocks(source["content"], f"{place}.content", texts)


def _string(block: dict[str, Any], key: str, place: str) -> None:
    if not isinstance(block.get(key), str):
        raise BadRequestError(f"{place}.{key} must be a string")


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "timeout_error" if status == 504 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message, "code": code}}


def error_event(message: str, code: str) -> SseEvent:
    return SseEvent.of(json.dumps(error_body(504, message, code)), event="error")


class AnthropicStream:
    """Rewrites ``content_block_*`` events of a messages stream."""

    def __init__(self, unmasker: Unmasker) -> None:
        self._unmasker = unmasker
        self._streams: dict[int, StreamText] = {}
        self._json: dict[int, bool] = {}

    def rewrite(self, event: SseEvent) -> list[SseEvent]:
        data = event.data
        message = _parse(data) if data is not None else None
        if message is None:
            return [event]
        kind = message.get("type")
        index = message.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            return self._start(event, message, index)
        if kind == "content_block_delta" and isinstance(index, int):
            return self._delta(event, message, index)
        if kind == "content_block_stop" and isinstance(index, int):
            return [*self._flush(index), event]
        if kind == "message_stop":
            return [*self.finish(), event]
        if kind == "error" and self._unmasker.in_place(message):
            return [event.with_data(dump_json(message))]
        return [event]

    def finish(self) -> list[SseEvent]:
        """Text still held back when the stream ended without closing its blocks."""
        return [held for index in sorted(self._streams) for held in self._flush(index)]

    def _start(self, event: SseEvent, message: dict[str, Any], index: int) -> list[SseEvent]:
        block = message.get("content_block")
        if not isinstance(block, dict):
            return [event]
        self._json[index] = block.get("type") in _JSON_BLOCKS
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            block["text"] = self._stream(index).feed(block["text"])
            return [event.with_data(dump_json(message))]
        return [event]

    def _delta(self, event: SseEvent, message: dict[str, Any], index: int) -> list[SseEvent]:
        delta = message.get("delta")
        kind = delta.get("type") if isinstance(delta, dict) else None
        key = _DELTA_KEYS.get(kind) if isinstance(kind, str) else None
        if key is None or not isinstance(delta, dict) or not isinstance(delta.get(key), str):
            return [event]  # thinking and signature deltas pass as they are
        self._json[index] = key == "partial_json"
        new = self._stream(index).feed(delta[key])
        if new == delta[key]:
            return [event]
        delta[key] = new
        return [event.with_data(dump_json(message))]

    def _stream(self, index: int) -> StreamText:
        stream = self._streams.get(index)
        if stream is None:
            stream = self._streams[index] = StreamText(self._unmasker, json_text=self._json.get(index, False))
        return stream

    def _flush(self, index: int) -> list[SseEvent]:
        stream = self._streams.pop(index, None)
        text = stream.flush() if stream is not None else ""
        if not text:
            return []
        delta = (
            {"type": "input_json_delta", "partial_json": text}
            if self._json.get(index)
            else {"type": "text_delta", "text": text}
        )
        return [
            SseEvent.of(
                dump_json({"type": "content_block_delta", "index": index, "delta": delta}), "content_block_delta"
            )
        ]


def _parse(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


ANTHROPIC = WireFormat("anthropic", collect, AnthropicStream, error_body, error_event)
