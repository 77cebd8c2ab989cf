"""Anthropic's Messages API over the shared transport.

What differs from the OpenAI shape: the system prompt is a top-level field; ``max_tokens`` is required;
temperature is 0–1 and is not combined with top_p; there is no seed; structured output is requested by
instruction and checked by the gateway's schema validation; 529 means overloaded (treated like 429).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from ctistudio.llm.errors import BadOutput
from ctistudio.llm.providers.http_provider import HttpProvider
from ctistudio.llm.reasoning import choose_answer
from ctistudio.llm.types import ChatRequest, ChatResult, Health, ModelInfo, StreamDelta, Timings, Usage

API_VERSION = "2023-06-01"


class AnthropicProvider(HttpProvider):
    name = "anthropic"

    def __init__(self, base_url: str, *, api_key: str | None, timeout: float = 600.0, **kwargs: Any) -> None:
        headers = {"x-api-key": api_key or "", "anthropic-version": API_VERSION}
        super().__init__(base_url, timeout=timeout, headers=headers, **kwargs)

    def fix_for(self, kind: str) -> str | None:
        return {
            "auth": "Set ANTHROPIC_API_KEY to a valid key (console.anthropic.com).",
            "model": "Check ANTHROPIC_MODEL (e.g. claude-haiku-4-5).",
            "rate": "Anthropic is rate limiting or overloaded: wait and retry.",
            "connect": "Check the network connection to Anthropic (ANTHROPIC_BASE_URL).",
            "context": "Shorten the input; the model's window is fixed.",
        }.get(kind)

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        if request.response_schema is not None:
            system += "\n\nAnswer with ONLY a JSON value matching this JSON Schema, no prose:\n" + json.dumps(
                request.response_schema, separators=(",", ":")
            )
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
            "stream": stream,
        }
        if system.strip():
            body["system"] = system.strip()
        if request.temperature is not None:
            body["temperature"] = max(0.0, min(1.0, request.temperature))
        elif request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = request.stop
        return body

    async def complete(self, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        response = await self.transport.request(
            "POST", "v1/messages", json_body=self.build_body(request, stream=False), timeout=request.timeout
        )
        elapsed = time.perf_counter() - started
        try:
            data = response.json()
            text = "".join(b.get("text", "") for b in data.get("content", []) if b.get("type") == "text")
        except (ValueError, AttributeError) as exc:
            raise BadOutput(f"anthropic returned an unexpected response: {response.text[:300]}") from exc
        answer, reasoning = choose_answer(text, None)
        raw_usage = data.get("usage") or {}
        usage = Usage(
            prompt_tokens=raw_usage.get("input_tokens"),
            completion_tokens=raw_usage.get("output_tokens"),
            cached_tokens=raw_usage.get("cache_read_input_tokens"),
        )
        timings = Timings(total=elapsed)
        if usage.completion_tokens and elapsed > 0:
            timings.generation_tokens_per_s = usage.completion_tokens / elapsed
        return ChatResult(
            text=answer,
            reasoning=reasoning,
            finish_reason=data.get("stop_reason"),
            usage=usage,
            timings=timings,
            provider=self.name,
            model=data.get("model") or request.model or "",
            url=str(response.url),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        usage = Usage()
        finish = None
        model = request.model or ""
        events = self.transport.stream_events(
            "v1/messages", self.build_body(request, stream=True), timeout=request.timeout
        )
        async with contextlib.aclosing(events):
            async for event in events:
                kind = event.get("type")
                if kind == "message_start":
                    message = event.get("message") or {}
                    model = message.get("model") or model
                    usage.prompt_tokens = (message.get("usage") or {}).get("input_tokens")
                elif kind == "content_block_delta":
                    piece = (event.get("delta") or {}).get("text")
                    if piece:
                        first = first if first is not None else time.perf_counter() - started
                        parts.append(piece)
                        yield StreamDelta(text=piece)
                elif kind == "message_delta":
                    finish = (event.get("delta") or {}).get("stop_reason") or finish
                    usage.completion_tokens = (event.get("usage") or {}).get("output_tokens")
                elif kind == "error":
                    raise self.transport.map_status(500, json.dumps(event), self.transport.base_url)
        elapsed = time.perf_counter() - started
        answer, reasoning = choose_answer("".join(parts), None)
        timings = Timings(total=elapsed, time_to_first_token=first)
        if usage.completion_tokens and first is not None and elapsed > first:
            timings.generation_tokens_per_s = usage.completion_tokens / (elapsed - first)
        yield StreamDelta(
            done=True,
            result=ChatResult(
                text=answer,
                reasoning=reasoning,
                finish_reason=finish,
                usage=usage,
                timings=timings,
                provider=self.name,
                model=model,
                url=self.transport.base_url,
            ),
        )

    async def models(self) -> list[ModelInfo]:
        """Anthropic's model list (``GET /v1/models``); context windows are not part of it."""
        response = await self.transport.request("GET", "v1/models", timeout=10)
        try:
            data = response.json().get("data") or []
        except (ValueError, AttributeError) as exc:
            raise BadOutput(f"anthropic returned an unexpected model list: {response.text[:200]}") from exc
        return [ModelInfo(id=item.get("id", ""), provider=self.name, type="llm") for item in data]

    async def health(self) -> Health:
        # Availability of a cloud API is not probed on every auto-chain walk: a configured key is enough.
        if not self.transport._headers.get("x-api-key"):
            return Health(provider=self.name, ok=False, detail="ANTHROPIC_API_KEY is not set")
        return Health(provider=self.name, ok=True, detail="key configured (not contacted)")
