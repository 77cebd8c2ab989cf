"""OpenAI's cloud API: the OpenAI-compatible provider with OpenAI's parameter rules.

Reasoning models (o-series, gpt-5) reject ``temperature``/``top_p`` and take ``max_completion_tokens``.
Retries happen in the router only (no SDK with its own retry loop sits underneath).
"""

from __future__ import annotations

import re
from typing import Any

from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.llm.types import ChatRequest

_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.I)


class OpenAIProvider(OpenAICompatibleProvider):
    name = "openai"

    def fix_for(self, kind: str) -> str | None:
        return {
            "auth": "Set OPENAI_API_KEY to a valid key (platform.openai.com → API keys).",
            "model": "Check OPENAI_MODEL (e.g. gpt-4o-mini).",
            "rate": "OpenAI is rate limiting this key: wait, or lower the number of parallel requests.",
            "connect": "Check the network connection to OpenAI (OPENAI_BASE_URL).",
        }.get(kind) or super().fix_for(kind)

    def response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        fmt = super().response_format(request)
        if fmt is not None:
            # Strict mode demands additionalProperties=false everywhere; our schemas don't promise that.
            fmt["json_schema"]["strict"] = False
        return fmt

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().build_body(request, stream=stream)
        if _REASONING_MODEL.match(request.model or ""):
            body.pop("temperature", None)
            body.pop("top_p", None)
            body["max_completion_tokens"] = body.pop("max_tokens")
        return body
