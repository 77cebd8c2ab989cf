"""Ollama (``OLLAMA_URL``, default http://localhost:11434) through its native API.

The native API is used rather than Ollama's OpenAI-compatible ``/v1`` because only it takes the options
that matter here: ``format`` with a JSON Schema (constrained output) and ``num_ctx``. Ollama loads models
with a small default window (4,096 tokens under 24 GiB of VRAM) and silently cuts longer prompts, so every
request sets ``num_ctx`` from what it needs — prompt + answer, at least the task's minimum, rounded up to
a power of two (fewer model reloads), at most the model's trained window from ``/api/show``.

Chat: ``POST /api/chat`` (NDJSON stream); embeddings: ``POST /api/embed``; models: ``/api/tags`` and
``/api/ps`` (loaded, with their window); health: ``/api/version``. HTTP and error mapping are the shared
transport's (``model "x" not found, try pulling it first`` becomes ``ModelNotLoaded``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ctistudio.llm.context import window_for
from ctistudio.llm.errors import BadOutput, LLMError, ProviderError, ProviderUnavailable
from ctistudio.llm.provider import TOKENS_PER_MESSAGE_ESTIMATE
from ctistudio.llm.providers.http_provider import HttpProvider
from ctistudio.llm.providers.threaded import AnswerStream
from ctistudio.llm.reasoning import choose_answer
from ctistudio.llm.types import ChatRequest, ChatResult, EmbeddingResult, Health, ModelInfo, StreamDelta, Timings, Usage

log = logging.getLogger(__name__)

NS = 1e9


def context_for(need: int, *, task: str, trained: int | None) -> int:
    """``num_ctx`` for a request needing ``need`` tokens: ≥ task minimum, power of two, ≤ trained window."""
    size = window_for(need, task)
    return min(size, trained) if trained else size


class OllamaProvider(HttpProvider):
    """Ollama's native API over the shared transport (not its OpenAI-compatible ``/v1``: see the module)."""

    name = "ollama"

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url.rstrip("/"), **kwargs)
        self._trained: dict[str, int | None] = {}

    def context_fix(self, model: str, size: int) -> str:
        # num_ctx is set per request (up to the trained window): only another model widens it.
        return (
            f"Use a model trained for at least {size:,} tokens of context (`ollama show MODEL`), or shorten the input."
        )

    def fix_for(self, kind: str) -> str | None:
        return {
            "connect": (
                f"Start Ollama (`ollama serve`) or point OLLAMA_URL at it (tried {self.transport.candidates[0]})."
            ),
            "model": "Pull the model first: `ollama pull MODEL` (OLLAMA_MODEL names it).",
            "context": "Use a model with a larger trained window, or shorten the input.",
            "timeout": "Ollama is slow (loading the model or a long prompt): raise CTISTUDIO_TIMEOUT.",
            "server": "Ollama failed while answering; check `ollama serve`'s log.",
            "rate": "Ollama is busy: lower parallel requests or raise OLLAMA_NUM_PARALLEL.",
            "auth": "Check the proxy in front of Ollama.",
        }.get(kind)

    # -- request body --------------------------------------------------------------------------------
    async def num_ctx(self, request: ChatRequest) -> int:
        model = request.model or self.default_model or ""
        need = request.max_tokens + sum(
            [await self.count_tokens(m.content) + TOKENS_PER_MESSAGE_ESTIMATE for m in request.messages]
        )
        return context_for(need, task=request.task.value, trained=await self.trained_context(model))

    async def chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": request.max_tokens, "num_ctx": await self.num_ctx(request)}
        for key in ("temperature", "top_p", "seed", "stop"):
            value = getattr(request, key)
            if value is not None:
                options[key] = value
        body: dict[str, Any] = {
            "model": request.model or self.default_model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
            "options": options,
        }
        if request.response_schema is not None:
            body["format"] = request.response_schema
        return body

    # -- chat ----------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        body = await self.chat_body(request, stream=False)
        response = await self.transport.request("POST", "/api/chat", json_body=body, timeout=request.timeout)
        try:
            data = response.json()
            message = data["message"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadOutput(f"ollama returned an unexpected response: {response.text[:300]}") from exc
        text, reasoning = choose_answer(message.get("content"), message.get("thinking"))
        return self._result(request, data, text, reasoning, time.perf_counter() - started, None, str(response.url))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        body = await self.chat_body(request, stream=True)
        collected = AnswerStream()
        thoughts: list[str] = []
        final: dict[str, Any] = {}
        async for line in self.transport.stream_lines("/api/chat", body, timeout=request.timeout):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("ollama: ignoring undecodable stream line: %.200s", line)
                continue
            if event.get("error"):
                raise self.transport.map_status(500, json.dumps(event), self.transport.base_url)
            message = event.get("message") or {}
            if message.get("thinking"):
                thoughts.append(message["thinking"])
            visible = collected.feed(message.get("content") or "")
            if visible:
                yield StreamDelta(text=visible)
            if event.get("done"):
                final = event
        tail = collected.flush()
        if tail:
            yield StreamDelta(text=tail)
        if not final:
            raise ProviderUnavailable(
                "ollama: the stream ended before the final (done) message",
                fix=self.fix_for("server"),
                provider=self.name,
                url=self.transport.base_url,
            )
        if not collected.pieces and not thoughts:
            raise BadOutput("ollama streamed no answer", raw="")
        text, reasoning = collected.answer("".join(thoughts) or None)
        url = self.transport.url_for("/api/chat")
        result = self._result(request, final, text, reasoning, collected.elapsed, collected.first, url)
        yield StreamDelta(done=True, result=result)

    def _result(
        self,
        request: ChatRequest,
        data: dict[str, Any],
        text: str,
        reasoning: str | None,
        total: float,
        first: float | None,
        url: str,
    ) -> ChatResult:
        prompt_n, eval_n = data.get("prompt_eval_count"), data.get("eval_count")
        prompt_ns, eval_ns = data.get("prompt_eval_duration"), data.get("eval_duration")
        return ChatResult(
            text=text,
            reasoning=reasoning,
            finish_reason=data.get("done_reason"),
            usage=Usage(prompt_tokens=prompt_n, completion_tokens=eval_n),
            timings=Timings(
                time_to_first_token=first,
                total=total,
                prompt_tokens_per_s=prompt_n / (prompt_ns / NS) if prompt_n and prompt_ns else None,
                generation_tokens_per_s=eval_n / (eval_ns / NS) if eval_n and eval_ns else None,
            ),
            provider=self.name,
            model=data.get("model") or request.model or self.default_model or "",
            url=url,
        )

    # -- models and facts ------------------------------------------------------------------------------
    async def trained_context(self, model: str) -> int | None:
        """The model's trained window from ``/api/show`` (``<arch>.context_length``), cached."""
        if model not in self._trained:
            try:
                response = await self.transport.request("POST", "/api/show", json_body={"model": model}, timeout=10)
                info = response.json().get("model_info") or {}
                values = [v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)]
                self._trained[model] = values[0] if values else None
            except ProviderError as error:
                log.debug("ollama: /api/show %s failed (%s)", model, error)
                return None
        return self._trained[model]

    async def context_length(self, model: str) -> int | None:
        """The window we can use: an override, else the trained window (num_ctx is set per request)."""
        return self.context_override(model) or await self.trained_context(model)

    async def models(self) -> list[ModelInfo]:
        tags = (await self.transport.request("GET", "/api/tags", timeout=10)).json().get("models") or []
        try:
            running = (await self.transport.request("GET", "/api/ps", timeout=10)).json().get("models") or []
        except ProviderError:
            running = []
        loaded = {m.get("name") or m.get("model"): m for m in running}
        infos = []
        for tag in tags:
            name = tag.get("name") or tag.get("model", "")
            details = tag.get("details") or {}
            live = loaded.get(name)
            infos.append(
                ModelInfo(
                    id=name,
                    provider=self.name,
                    loaded=live is not None,
                    context_length=(live or {}).get("context_length"),
                    max_context_length=self._trained.get(name),
                    type="embedding" if "bert" in str(details.get("family", "")) else "llm",
                    quantization=details.get("quantization_level"),
                    format=details.get("format"),
                    size_bytes=tag.get("size"),
                )
            )
        return infos

    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        model = model or self.embedding_model
        if not texts:
            return EmbeddingResult(vectors=[], model=model or "", provider=self.name, dimensions=0)
        response = await self.transport.request("POST", "/api/embed", json_body={"model": model, "input": texts})
        try:
            vectors = [[float(x) for x in row] for row in response.json()["embeddings"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadOutput(f"ollama returned an unexpected embeddings response: {response.text[:300]}") from exc
        if len(vectors) != len(texts) or any(not v or not any(v) for v in vectors):
            raise BadOutput(f"ollama returned {len(vectors)} usable embeddings for {len(texts)} texts")
        return EmbeddingResult(vectors=vectors, model=model or "", provider=self.name, dimensions=len(vectors[0]))

    async def health(self) -> Health:
        started = time.perf_counter()
        url = self.transport.candidates[0]
        try:
            version = (await self.transport.request("GET", "/api/version", timeout=5)).json().get("version")
        except LLMError as error:
            return Health(provider=self.name, ok=False, detail=str(error), url=url)
        return Health(
            provider=self.name,
            ok=True,
            detail=f"Ollama {version or '?'}",
            url=url,
            latency_s=time.perf_counter() - started,
        )
