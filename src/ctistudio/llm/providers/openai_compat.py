"""Any OpenAI-compatible server (vLLM, LocalAI, llama-server, LM Studio, OpenAI itself).

LM Studio, llama-server and OpenAI subclass this and override only what differs (model state and context
discovery, tokenizer endpoints, parameter quirks). HTTP, streaming and error mapping live in
:class:`~ctistudio.llm.transport.HttpTransport`, owned by the :class:`HttpProvider` base.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from ctistudio.llm.errors import BadOutput, BadRequest
from ctistudio.llm.providers.http_provider import HttpProvider
from ctistudio.llm.reasoning import ThinkFilter, choose_answer
from ctistudio.llm.transport import HttpTransport
from ctistudio.llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ModelInfo,
    StreamDelta,
    Timings,
    Usage,
)


class OpenAICompatibleProvider(HttpProvider):
    """Chat, streaming, embeddings and model listing over the OpenAI wire format."""

    name = "openai_compat"
    #: whether the server understands ``stream_options.include_usage``
    stream_usage = True

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        fallback_hosts: list[str] | None = None,
        embedding_url: str | None = None,
        embedding_fallback_hosts: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, fallback_hosts=fallback_hosts, **kwargs)
        # Embeddings may live on another server (LMSTUDIO_EMBEDDING_URL is a full endpoint URL).
        self.embedding_transport = (
            HttpTransport(
                embedding_url,
                provider=self.name,
                api_key=api_key,
                timeout=timeout,
                fallback_hosts=embedding_fallback_hosts,
                fix_for=self.fix_for,
            )
            if embedding_url
            else None
        )

    # -- wire format ---------------------------------------------------------------------------------
    def response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        """``response_format`` for a schema request. LM Studio rejects ``json_object``: use json_schema."""
        if request.response_schema is None:
            return None
        return {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.response_schema, "strict": True},
        }

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        for key in ("temperature", "top_p", "seed", "stop"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        response_format = self.response_format(request)
        if response_format is not None:
            body["response_format"] = response_format
        if stream and self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def chat_path(self) -> str:
        return "chat/completions"

    # -- chat ----------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        response = await self.transport.request(
            "POST", self.chat_path(), json_body=self.build_body(request, stream=False), timeout=request.timeout
        )
        elapsed = time.perf_counter() - started
        try:
            data = response.json()
        except ValueError as exc:
            raise BadOutput(f"{self.name} returned an unexpected response: {response.text[:300]}") from exc
        if isinstance(data, dict) and "error" in data and not data.get("choices"):
            raise self.transport.error_from_event(data, str(response.url))  # an error sent with HTTP 200
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise BadOutput(f"{self.name} returned an unexpected response: {response.text[:300]}") from exc
        text, reasoning = choose_answer(message.get("content"), _reasoning_of(message))
        usage = _usage(data.get("usage"))
        return ChatResult(
            text=text,
            reasoning=reasoning,
            finish_reason=choice.get("finish_reason"),
            usage=usage,
            timings=_timings(elapsed, None, usage, data.get("timings")),
            provider=self.name,
            model=data.get("model") or request.model or "",
            url=str(response.url),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        started = time.perf_counter()
        first: float | None = None
        content: list[str] = []
        reasoning: list[str] = []
        finish_reason = None
        usage = Usage()
        server_timings = None
        model = request.model or ""
        think = ThinkFilter()
        events = self.transport.stream_events(
            self.chat_path(), self.build_body(request, stream=True), timeout=request.timeout
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if "error" in event and not event.get("choices"):
                    # e.g. LM Studio's overflow, sent as an "event: error" frame after HTTP 200
                    raise self.transport.error_from_event(event, self.transport.url_for(self.chat_path()))
                model = event.get("model") or model
                if event.get("usage"):
                    usage = _usage(event["usage"])
                if event.get("timings"):
                    server_timings = event["timings"]
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    finish_reason = choice.get("finish_reason") or finish_reason
                    piece = delta.get("content")
                    thought = _reasoning_of(delta)
                    if (piece or thought) and first is None:
                        first = time.perf_counter() - started  # thinking tokens are tokens too
                    if thought:
                        reasoning.append(thought)
                    if piece:
                        content.append(piece)
                        visible = think.feed(piece)
                        if visible:
                            yield StreamDelta(text=visible)
        tail = think.flush()
        if tail:
            yield StreamDelta(text=tail)
        elapsed = time.perf_counter() - started
        text, thoughts = choose_answer("".join(content), "".join(reasoning) or None)
        if usage.completion_tokens is None and content:
            usage.completion_tokens = len(content)  # one token per streamed chunk is what servers send
        result = ChatResult(
            text=text,
            reasoning=thoughts,
            finish_reason=finish_reason,
            usage=usage,
            timings=_timings(elapsed, first, usage, server_timings),
            provider=self.name,
            model=model,
            url=self.transport.url_for(self.chat_path()),
        )
        if not content and not reasoning:
            raise BadOutput(f"{self.name} streamed no answer", raw="")
        yield StreamDelta(done=True, result=result)

    # -- models and embeddings -------------------------------------------------------------------------
    async def models(self) -> list[ModelInfo]:
        response = await self.transport.request("GET", "models", timeout=10)
        try:
            data = response.json().get("data") or []
        except (ValueError, AttributeError) as exc:
            raise BadRequest(
                f"{self.name}: {response.url} did not answer with a model list: {response.text[:200]}",
                provider=self.name,
                url=str(response.url),
                status_code=response.status_code,
                fix=self.fix_for("connect"),
            ) from exc
        infos = []
        for item in data:
            meta = item.get("meta") or {}
            infos.append(
                ModelInfo(
                    id=item.get("id", ""),
                    provider=self.name,
                    context_length=meta.get("n_ctx") or item.get("context_length"),
                    max_context_length=meta.get("n_ctx_train") or item.get("max_context_length"),
                )
            )
        return infos

    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        model = model or self.embedding_model
        transport = self.embedding_transport or self.transport
        path = "" if self.embedding_transport else "embeddings"
        response = await transport.request("POST", path, json_body={"model": model, "input": texts})
        try:
            rows = sorted(response.json()["data"], key=lambda r: r.get("index", 0))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadOutput(f"{self.name} returned an unexpected embeddings response: {response.text[:300]}") from exc
        if len(vectors) != len(texts) or any(not v for v in vectors):
            raise BadOutput(f"{self.name} returned {len(vectors)} embeddings for {len(texts)} texts")
        return EmbeddingResult(
            vectors=vectors, model=model or "", provider=self.name, dimensions=len(vectors[0]) if vectors else 0
        )

    async def aclose(self) -> None:
        await super().aclose()
        if self.embedding_transport:
            await self.embedding_transport.aclose()


def _reasoning_of(message: dict[str, Any]) -> str | None:
    return message.get("reasoning_content") or message.get("reasoning") or None


def _usage(raw: dict[str, Any] | None) -> Usage:
    if not raw:
        return Usage()
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=raw.get("prompt_tokens"),
        completion_tokens=raw.get("completion_tokens"),
        cached_tokens=details.get("cached_tokens"),
    )


def _timings(total: float, first: float | None, usage: Usage, server: dict[str, Any] | None) -> Timings:
    """Client-measured timings; token rates from the server's own figures when it reports them."""
    timings = Timings(time_to_first_token=first, total=total)
    if server:
        timings.prompt_tokens_per_s = server.get("prompt_per_second")
        timings.generation_tokens_per_s = server.get("predicted_per_second")
        if usage.cached_tokens is None and server.get("cache_n") is not None:
            usage.cached_tokens = server["cache_n"]
    if timings.generation_tokens_per_s is None and usage.completion_tokens:
        generating = total - (first or 0.0)
        if generating > 0:
            timings.generation_tokens_per_s = usage.completion_tokens / generating
    if timings.prompt_tokens_per_s is None and usage.prompt_tokens and first:
        timings.prompt_tokens_per_s = usage.prompt_tokens / first
    return timings
