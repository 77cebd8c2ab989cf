"""The gateway: the one object the rest of ctistudio calls for anything LLM.

    from ctistudio.llm import Gateway
    gateway = Gateway()                       # settings from env / .env
    result = await gateway.chat("Summarise …", task="chat")
    ranked = await gateway.chat(messages, task="rank", output_type=RankResult)  # validated pydantic model

It builds providers from settings, keeps one router per provider selection (sharing endpoint limits and
availability), and turns schema-constrained answers into validated objects with one repair attempt. The
determinism settings (``CTISTUDIO_TEMPERATURE``, ``CTISTUDIO_TOP_P``, ``CTISTUDIO_SEED``; LM Studio's own
``LMSTUDIO_*`` values where set) reach every request the caller leaves them unset in, through the router.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from ctistudio.config import Settings, load_settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm.errors import BadOutput, LLMError
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers import auto_chain, build_provider, embedding_provider_name, sampling
from ctistudio.llm.router import EndpointRegistry, Router, RouterPolicy
from ctistudio.llm.structured import extract_json, parse_structured, repair_prompt, truncated_json_candidates
from ctistudio.llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Health,
    Message,
    ModelInfo,
    StreamDelta,
    Task,
)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@functools.lru_cache(maxsize=256)
def schema_of(output_type: type[BaseModel]) -> dict[str, Any]:
    """``output_type``'s JSON Schema, computed once per type (pydantic rebuilds it on every call)."""
    return output_type.model_json_schema()


Prompt = str | list[Message] | list[dict[str, Any]] | ChatRequest


class Gateway:
    """Routes every LLM call of the product. Usable alone: it needs no database and no web app."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        providers: dict[str, Provider] | None = None,
        policy: RouterPolicy | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self._providers: dict[str, Provider] = dict(providers or {})
        self._explicit = providers is not None  # tests and embedders may pass their own providers
        self._routers: dict[str, Router] = {}
        self._endpoints = EndpointRegistry()  # one per gateway: limits, cooldowns and health shared by its routers
        self._sampling = sampling(self.settings)  # for providers passed in (built ones carry their own)
        s = self.settings
        self.policy = policy or RouterPolicy(
            retries=s.retries,
            backoff=s.retry_backoff,
            cooldown_failures=s.cooldown_failures,
            cooldown_seconds=s.cooldown_seconds,
            health_ttl=s.health_ttl,
        )

    # -- providers and routers -------------------------------------------------------------------
    def provider(self, name: str) -> Provider:
        """The provider called ``name``, built on first use."""
        if name not in self._providers:
            if self._explicit:
                raise ConfigurationError(
                    f"unknown LLM provider {name!r}", fix=f"Use one of: {', '.join(self._providers)}."
                )
            self._providers[name] = build_provider(name, self.settings)
        return self._providers[name]

    def chain_names(self, provider: str | None = None) -> list[str]:
        choice = provider or self.settings.llm_provider
        if choice != "auto":
            return [choice]
        if self._explicit:
            return list(self._providers)
        return auto_chain(self.settings)

    def router(self, provider: str | None = None) -> Router:
        """The router for ``provider`` (``None`` → ``LLM_PROVIDER``; ``auto`` → the enabled chain)."""
        names = self.chain_names(provider)
        key = ",".join(names)
        if key not in self._routers:
            policy = RouterPolicy(**{**self.policy.__dict__, "check_health": len(names) > 1})
            self._routers[key] = Router(
                [self.provider(n) for n in names], policy=policy, endpoints=self._endpoints, defaults=self._sampling
            )
        return self._routers[key]

    # -- requests ----------------------------------------------------------------------------------
    def build_request(
        self,
        prompt: Prompt,
        *,
        task: Task | str = Task.CHAT,
        model: str | None = None,
        system: str | None = None,
        schema: dict[str, Any] | None = None,
        output_type: type[BaseModel] | None = None,
        **options: Any,
    ) -> ChatRequest:
        """Normalise the many ways of saying "ask this" into one :class:`ChatRequest`."""
        if isinstance(prompt, ChatRequest):
            request = prompt
        else:
            if isinstance(prompt, str):
                messages = [Message(role="user", content=prompt)]
            else:
                messages = [m if isinstance(m, Message) else Message(**m) for m in prompt]
            if system:
                messages.insert(0, Message(role="system", content=system))
            request = ChatRequest(messages=messages, task=Task(task), model=model, **options)
        if output_type is not None and request.response_schema is None:
            request = request.model_copy(
                update={"response_schema": schema_of(output_type), "schema_name": output_type.__name__}
            )
        elif schema is not None:
            request = request.model_copy(update={"response_schema": schema})
        return request

    @overload
    async def chat(self, prompt: Prompt, *, output_type: type[M], **kwargs: Any) -> ChatResult: ...
    @overload
    async def chat(self, prompt: Prompt, **kwargs: Any) -> ChatResult: ...

    async def chat(
        self,
        prompt: Prompt,
        *,
        task: Task | str = Task.CHAT,
        provider: str | None = None,
        model: str | None = None,
        system: str | None = None,
        schema: dict[str, Any] | None = None,
        output_type: type[BaseModel] | None = None,
        **options: Any,
    ) -> ChatResult:
        """Ask and wait for the whole answer. With ``schema``/``output_type``, ``result.parsed`` is validated."""
        request = self.build_request(
            prompt, task=task, model=model, system=system, schema=schema, output_type=output_type, **options
        )
        router = self.router(provider)
        result = await router.complete(request)
        _log_call(request, result)
        if request.response_schema is None:
            return result
        return await self._structured(router, request, result, output_type)

    async def _structured(
        self, router: Router, request: ChatRequest, result: ChatResult, output_type: type[BaseModel] | None
    ) -> ChatResult:
        assert request.response_schema is not None
        try:
            result.parsed = self._decode(result, request.response_schema, output_type)
            return result
        except BadOutput as error:
            first_error = error
        if result.finish_reason == "length":
            # Cut at max_tokens: a repair would get the same budget. Keep the complete part if it fits.
            salvaged = self._salvage(result, request.response_schema, output_type)
            if salvaged is not None:
                log.info("%s: answer cut at max_tokens; kept its complete part", result.provider)
                result.parsed = salvaged
                return result
        log.info("%s: invalid structured answer (%s); asking once for a repair", result.provider, first_error.message)
        repair = request.model_copy(
            update={
                "messages": [
                    *request.messages,
                    Message(role="assistant", content=result.text[:8000]),
                    Message(role="user", content=repair_prompt(first_error, request.response_schema)),
                ],
            }
        )
        repaired = await self._answering_router(router, result).complete(repair)
        _log_call(repair, repaired)
        try:
            repaired.parsed = self._decode(repaired, request.response_schema, output_type)
        except BadOutput as error:
            raise BadOutput(
                f"{repaired.provider}/{repaired.model} did not produce valid structured output after one repair: "
                f"{error.message}",
                raw=repaired.text,
                fix="Use a larger or instruction-tuned model for this task, or lower the temperature.",
            ) from error
        repaired.attempts += result.attempts
        return repaired

    def _answering_router(self, router: Router, result: ChatResult) -> Router:
        """A router over just the provider that produced ``result`` (the repair goes back to the same model)."""
        for candidate in router.providers:
            if candidate.name == result.provider and len(router.providers) > 1:
                key = f"={candidate.endpoint}"
                if key not in self._routers:
                    policy = RouterPolicy(**{**self.policy.__dict__, "check_health": False})
                    self._routers[key] = Router(
                        [candidate], policy=policy, endpoints=self._endpoints, defaults=self._sampling
                    )
                return self._routers[key]
        return router

    @classmethod
    def _salvage(cls, result: ChatResult, schema: dict[str, Any], output_type: type[BaseModel] | None) -> Any:
        """The longest complete prefix of a cut answer that satisfies the schema, or None."""
        for candidate in truncated_json_candidates(result.text or ""):
            try:
                return cls._decode(result.model_copy(update={"text": candidate}), schema, output_type)
            except BadOutput:
                continue
        return None

    @staticmethod
    def _decode(result: ChatResult, schema: dict[str, Any], output_type: type[BaseModel] | None) -> Any:
        """The answer as the schema's value (or a validated ``output_type`` instance); BadOutput otherwise."""
        text = result.text or ""
        if output_type is None:
            return parse_structured(text, schema)
        value = extract_json(text)
        try:
            return output_type.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'/'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:20])
            raise BadOutput(f"the model's JSON does not fit {output_type.__name__}: {problems}", raw=text) from exc

    async def stream(
        self,
        prompt: Prompt,
        *,
        task: Task | str = Task.CHAT,
        provider: str | None = None,
        model: str | None = None,
        system: str | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamDelta]:
        """Stream the answer: text deltas, then a final delta with ``done=True`` and the full result.

        To stop early, close the stream so the connection and the concurrency slot are freed at once:
        ``async with contextlib.aclosing(gateway.stream(...)) as deltas: async for d in deltas: ... break``
        (otherwise they are freed when the generator is garbage-collected).
        """
        request = self.build_request(prompt, task=task, model=model, system=system, **options)
        async with contextlib.aclosing(self.router(provider).stream(request)) as deltas:
            async for delta in deltas:
                yield delta

    async def share_prefix(self, prompt: Prompt, *, task: Task | str = Task.CHAT, provider: str | None = None) -> bool:
        """Before sending several requests together that all start with ``prompt``'s messages: have the
        provider that answers first for ``task`` evaluate them once for all its parallel slots
        (:meth:`Provider.share_prefix`). A hint, never an error: ``False`` when it cannot."""
        router = self.router(provider)
        first = router.providers[0]
        request = self.build_request(prompt, task=task, max_tokens=1)
        request = request.model_copy(update={"model": first.model_for(request.task)})
        try:
            _, fit = await router.budget.fit(first, request, await router.budget.window(first, request.model or ""))
            if fit.truncated_chars:  # each request will cut the article at its own length: nothing is shared
                return False
            return await first.share_prefix(request)
        except LLMError as error:
            log.info("%s: prefix not shared (%s)", first.name, error.message)
            return False

    async def embed(
        self, texts: list[str], *, provider: str | None = None, model: str | None = None
    ) -> EmbeddingResult:
        """Embed with ONE provider: ``provider``, else :meth:`embedding_provider` (never a fallback chain)."""
        return await self.router(provider or self.embedding_provider()).embed(texts, model)

    def embedding_provider(self) -> str | None:
        """``CTISTUDIO_EMBEDDING_PROVIDER``; ``auto`` = the embedded MiniLM unless ``CTISTUDIO_EMBEDDED=false``.

        Decided by settings alone, not by which server answers, so an index never mixes two models' vectors
        (:func:`ctistudio.llm.providers.embedding_provider_name`). With providers passed in, ``auto`` is theirs.
        """
        if self._explicit and self.settings.embedding_provider == "auto":
            return None
        return embedding_provider_name(self.settings)

    async def models(self, provider: str | None = None) -> list[ModelInfo]:
        return await self.router(provider).models()

    async def health(self, provider: str | None = None) -> list[Health]:
        return [await p.health() for p in self.router(provider).providers]

    async def count_tokens(self, text: str, *, provider: str | None = None, model: str | None = None) -> int:
        return await self.router(provider).count_tokens(text, model)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _log_call(request: ChatRequest, result: ChatResult) -> None:
    """One debug line per answered call: where a pipeline's time and tokens went (CTISTUDIO_LOG_LEVEL=DEBUG)."""
    usage = result.usage
    log.debug(
        "%s/%s %s: %s prompt (%s cached) + %s completion tokens in %.1f s, finish %s",
        result.provider,
        result.model,
        request.task.value,
        usage.prompt_tokens,
        usage.cached_tokens,
        usage.completion_tokens,
        result.timings.total,
        result.finish_reason,
    )
