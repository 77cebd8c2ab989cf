"""The provider base class: one abstract method (``complete``); everything else has a working default.

A provider is one backend (an LM Studio server, a llama-server, OpenAI, an in-process engine…). The router
(:mod:`ctistudio.llm.router`) is itself a provider that wraps others, so callers never care which one
answers.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ctistudio.llm.errors import LLMError, Unsupported
from ctistudio.llm.types import ChatRequest, ChatResult, EmbeddingResult, Health, ModelInfo, StreamDelta, Task

# Conservative token estimate when a server offers no tokenizer: ~3 characters per token. English prose
# averages ~4 characters per token, but command lines, hashes, paths and URLs (what CTI articles are full
# of) tokenize far worse; over-counting only costs a little truncation, under-counting costs an overflow.
CHARS_PER_TOKEN_ESTIMATE = 3.0
# Chat templates add a few tokens around every message (role markers, separators).
TOKENS_PER_MESSAGE_ESTIMATE = 8


def estimate_tokens(text: str) -> int:
    """Conservative token count for ``text`` (see :data:`CHARS_PER_TOKEN_ESTIMATE`)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


class Provider(ABC):
    """Base class for every LLM backend.

    Subclasses implement :meth:`complete`. They override :meth:`stream`, :meth:`embed`, :meth:`models`,
    :meth:`count_tokens`, :meth:`context_length` or :meth:`health` where their server can do better than
    the defaults here.
    """

    #: short provider name used in logs, results and settings (``lmstudio``, ``openai`` …)
    name: str = "provider"
    #: the engine runs inside this process (no server to reach: reports say "engine", not "server")
    in_process: bool = False

    def __init__(
        self,
        *,
        name: str | None = None,
        models_by_task: dict[Task, str] | None = None,
        default_model: str | None = None,
        embedding_model: str | None = None,
        max_in_flight: int = 4,
        context_overrides: dict[str, int] | None = None,
    ) -> None:
        if name:
            self.name = name
        self.models_by_task = dict(models_by_task or {})
        self.default_model = default_model
        self.embedding_model = embedding_model
        self.max_in_flight = max_in_flight
        self.context_overrides = dict(context_overrides or {})
        #: sampling values a request gets where it sets none (temperature, top_p, seed), from settings
        self.request_defaults: dict[str, Any] = {}

    # -- the one abstract method -------------------------------------------------------------------
    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResult:
        """Send ``request`` (its ``model`` already resolved) and return the whole answer."""

    # -- defaults ----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Identity of the server behind this provider, used for per-endpoint concurrency and cooldown."""
        return self.name

    def hosts(self) -> list[Provider]:
        """The hosts this provider answers from (one; a :class:`~ctistudio.llm.hosts.HostSet` has several)."""
        return [self]

    def with_defaults(self, request: ChatRequest, fallback: Mapping[str, Any] | None = None) -> ChatRequest:
        """``request`` with this provider's :attr:`request_defaults` (else ``fallback``) where it sets none."""
        defaults = self.request_defaults or fallback or {}
        updates = {key: value for key, value in defaults.items() if getattr(request, key) is None}
        return request.model_copy(update=updates) if updates else request

    def model_for(self, task: Task | str) -> str | None:
        """The configured model for ``task``, else the provider's default model."""
        return self.models_by_task.get(Task(task)) or self.default_model

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        """Stream the answer. Default: one delta with the whole text, for providers that cannot stream."""
        result = await self.complete(request)
        if result.text:
            yield StreamDelta(text=result.text)
        yield StreamDelta(done=True, result=result)

    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        raise Unsupported(f"{self.name} does not provide embeddings", fix="Set CTISTUDIO_EMBEDDING_PROVIDER.")

    async def models(self) -> list[ModelInfo]:
        return []

    async def share_prefix(self, request: ChatRequest) -> bool:
        """Evaluate ``request``'s messages once and hold the result in every parallel slot of the server, so
        that several requests starting with those messages, sent together, reuse it instead of each slot
        evaluating it again. A hint: ``False`` (the default) when the server cannot; nothing depends on it."""
        return False

    async def count_tokens(self, text: str, model: str | None = None) -> int:
        """Exact count where the server can tokenize; otherwise the conservative estimate."""
        return estimate_tokens(text)

    async def context_length(self, model: str) -> int | None:
        """The context window the model is LOADED with, or ``None`` when unknown."""
        override = self.context_override(model)
        if override:
            return override
        for info in await self.models():
            if info.id == model or model in info.instances:
                return info.context_length
        return None

    def context_fix(self, model: str, size: int) -> str:
        """What the user does to give ``model`` a window of ``size`` tokens (the setting or command)."""
        return f"Use a model with a context window of at least {size:,} tokens, or shorten the input."

    def fix_for(self, kind: str) -> str | None:
        """How to fix a failure of ``kind`` (connect, timeout, auth, model, context, rate, server, embeddings)
        with this provider; ``None`` when it has no advice beyond the error's own."""
        return None

    def context_override(self, model: str) -> int | None:
        """A configured window for ``model`` (``LMSTUDIO_CONTEXT_LENGTH_<slug>`` or a provider-wide one)."""
        from ctistudio.config import model_slug  # local import: config imports nothing from llm

        return self.context_overrides.get(model_slug(model)) or self.context_overrides.get("*")

    async def health(self) -> Health:
        """Reachable and able to list models. Providers with a real health endpoint override this."""
        started = time.perf_counter()
        try:
            await self.models()
        except Exception as exc:  # a probe reports whatever went wrong instead of raising it
            detail = exc.message if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
            return Health(provider=self.name, ok=False, detail=detail, fix=getattr(exc, "fix", None))
        return Health(provider=self.name, ok=True, detail="reachable", latency_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        """Release connections or engines."""
