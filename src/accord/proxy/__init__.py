"""The masking LLM proxy, a shell over the vault: OpenAI- and Anthropic-compatible endpoints in front of a model API.

Run it with ``accord proxy --upstream URL``; in Python, ``create_proxy_app(upstream)`` is the ASGI app.
"""

from __future__ import annotations

from accord.proxy.anthropic import ANTHROPIC
from accord.proxy.app import DEFAULT_PORT, create_proxy_app
from accord.proxy.dialect import Dialect, StreamRewriter, WireFormat
from accord.proxy.handler import DEFAULT_TIMEOUT_S, MAX_BODY_BYTES, MaskingProxy, UpstreamFailedError
from accord.proxy.openai import OPENAI

__all__ = [
    "ANTHROPIC",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "OPENAI",
    "Dialect",
    "MaskingProxy",
    "StreamRewriter",
    "UpstreamFailedError",
    "WireFormat",
    "create_proxy_app",
]
