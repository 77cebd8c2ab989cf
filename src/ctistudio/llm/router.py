"""The router: a provider that wraps an ordered chain of providers — the fallback chain, nothing more.

What it adds, all driven by exception types (never by provider names):

- task → model resolution (each provider knows its model per task; an explicit model is the first's);
- the fallback chain: on an availability failure (unreachable, rate limited past retries, model missing,
  refused key) or a context overflow, the next provider is tried; when all fail, one error names each;
- availability checks (cached health) when walking the ``auto`` chain, and skipping endpoints in cooldown;
- several hosts per provider (a :class:`~ctistudio.llm.hosts.HostSet`): requests go to the hosts that have
  the task's model loaded, least in flight first (:func:`~ctistudio.llm.endpoints.least_loaded`); a host
  that fails moves the request to the next host at once, without the retries a lone host gets.

The parts it composes: :class:`~ctistudio.llm.endpoints.Endpoint` calls one server (a concurrency slot per
request, retries of transient failures only, cooldown); :class:`~ctistudio.llm.context.ContextBudget` fits
each request to the model's loaded window before sending and, on an overflow the server reports, once more
with the server's numbers (never a blind retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ctistudio.llm.context import ContextBudget
from ctistudio.llm.endpoints import Endpoint, EndpointRegistry, EndpointState, RouterPolicy, Sleep, least_loaded
from ctistudio.llm.errors import (
    AuthenticationFailed,
    ContextOverflow,
    LLMError,
    ModelNotLoaded,
    NoProviderAvailable,
    ProviderUnavailable,
    RateLimited,
    Unsupported,
)
from ctistudio.llm.provider import Provider
from ctistudio.llm.types import ChatRequest, ChatResult, ContextFit, EmbeddingResult, Health, ModelInfo, StreamDelta

__all__ = ["FALLBACK_ERRORS", "EndpointRegistry", "Router", "RouterPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Failures after which the next provider in the chain is tried.
FALLBACK_ERRORS: tuple[type[Exception], ...] = (
    ProviderUnavailable,
    RateLimited,
    ModelNotLoaded,
    AuthenticationFailed,
    ContextOverflow,
    Unsupported,
)
Candidate = tuple[Endpoint, ChatRequest | None, bool]  # endpoint, the request resolved there, a sibling host left


class Router(Provider):
    """A provider over an ordered chain of providers (see the module docstring for the rules)."""

    name = "router"

    def __init__(
        self,
        providers: list[Provider],
        *,
        policy: RouterPolicy | None = None,
        endpoints: EndpointRegistry | None = None,
        defaults: dict[str, Any] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(name="auto" if len(providers) != 1 else providers[0].name)
        if not providers:
            raise NoProviderAvailable(
                "no LLM provider is enabled",
                fix="Enable one (LMSTUDIO_ENABLED=true, LLAMACPP_ENABLED=true …) or keep CTISTUDIO_EMBEDDED=true.",
            )
        self.providers = providers
        self.policy = policy or RouterPolicy()
        self.endpoints = endpoints or EndpointRegistry()
        self.budget = ContextBudget(self.policy.health_ttl)
        self.defaults = defaults or {}  # sampling for providers that bring none (Provider.request_defaults)
        self._top = [self._endpoint(provider, provider.name, sleep) for provider in providers]
        self._groups = [
            [self._endpoint(host, f"{host.name} ({host.endpoint})", sleep) for host in provider.hosts()]
            if len(provider.hosts()) > 1
            else [top]
            for provider, top in zip(providers, self._top, strict=True)
        ]

    def _endpoint(self, provider: Provider, label: str, sleep: Sleep) -> Endpoint:
        return Endpoint(provider, self.endpoints.get(provider), self.policy, sleep, label)

    # -- chain walking ---------------------------------------------------------------------------
    async def _candidates(
        self, failures: dict[str, Exception], request: ChatRequest | None = None, embedding_model: str | None = None
    ) -> AsyncIterator[Candidate]:
        """The endpoints to try in order, each with ``request`` resolved there and whether a sibling is left."""
        first = True
        for group in self._groups:
            provider = group[0].provider
            resolved = self._resolve(provider, request, first) if request is not None else None
            if len(group) > 1:
                model = resolved.model if resolved is not None else (embedding_model or provider.embedding_model)
                async for host, more in least_loaded(group, model, failures):
                    first = False
                    yield host, resolved, more
                continue
            endpoint = group[0]
            skip = endpoint.cooling() or await self._unhealthy(endpoint)
            if skip is not None:
                failures[endpoint.label] = skip
                continue
            first = False
            yield endpoint, resolved, False

    def _resolve(self, provider: Provider, request: ChatRequest, first: bool) -> ChatRequest:
        """The model (an explicit one names a model of the first provider tried; the others use their task
        model) and the provider's sampling defaults where the request sets none."""
        model = request.model if (request.model and first) else provider.model_for(request.task)
        return provider.with_defaults(request.model_copy(update={"model": model}), self.defaults)

    async def _unhealthy(self, endpoint: Endpoint) -> ProviderUnavailable | None:
        if not (self.policy.check_health and len(self.providers) > 1):
            return None
        health = await endpoint.health()
        return (
            None if health.ok else ProviderUnavailable(health.detail, provider=endpoint.provider.name, fix=health.fix)
        )

    def _failed(self, endpoint: Endpoint, error: Exception, failures: dict[str, Exception]) -> None:
        log.warning("%s failed: %s", endpoint.label, error)
        failures[endpoint.label] = error
        endpoint.mark_unavailable(error)

    async def _fitted(
        self,
        endpoint: Endpoint,
        request: ChatRequest,
        send: Callable[..., Awaitable[tuple[T, int]]],
        more: bool,
    ) -> tuple[T, ContextFit, int]:
        """Fit ``request`` to the endpoint's window and ``send`` it (with retries); on an overflow reported by
        the server, fit it once more with the server's numbers and send again (then the overflow goes up)."""
        provider = endpoint.provider
        window = await self.budget.window(provider, request.model or "")
        fitted, fit = await self.budget.fit(provider, request, window)
        try:
            value, attempts = await send(fitted, failover=more)
        except ContextOverflow as overflow:
            fitted, fit = await self.budget.refit(provider, request, fitted, overflow, window)
            value, attempts = await send(fitted, failover=more)
        return value, fit, attempts

    # -- chat ---------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        failures: dict[str, Exception] = {}
        async for endpoint, resolved, more in self._candidates(failures, request):
            assert resolved is not None
            try:
                with endpoint.state.assignment():
                    result, fit, attempts = await self._fitted(endpoint, resolved, endpoint.chat, more)
            except FALLBACK_ERRORS as error:
                self._failed(endpoint, error, failures)
                continue
            result.fit = fit
            result.attempts = attempts
            return result
        raise NoProviderAvailable.of(failures)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamDelta, None]:
        """Stream from the first provider that starts answering.

        Retries and fallback apply until the first delta arrives; an error after that is the caller's
        (the text already shown cannot be taken back).
        """
        failures: dict[str, Exception] = {}
        async for endpoint, resolved, more in self._candidates(failures, request):
            assert resolved is not None
            try:
                with endpoint.state.assignment():
                    opened, fit, attempts = await self._fitted(endpoint, resolved, endpoint.open_stream, more)
            except FALLBACK_ERRORS as error:
                self._failed(endpoint, error, failures)
                continue
            async with contextlib.aclosing(endpoint.relay(opened)) as deltas:  # stopped early: freed at once
                async for delta in deltas:
                    if delta.result is not None:
                        delta.result.fit = fit
                        delta.result.attempts = attempts
                    yield delta
            return
        raise NoProviderAvailable.of(failures)

    # -- the rest of the provider interface ---------------------------------------------------------------
    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        failures: dict[str, Exception] = {}
        async for endpoint, _, more in self._candidates(failures, embedding_model=model):
            try:
                with endpoint.state.assignment():
                    result, _ = await endpoint.embed(texts, model, failover=more)
                return result
            except FALLBACK_ERRORS as error:
                self._failed(endpoint, error, failures)
        raise NoProviderAvailable.of(failures)

    async def models(self) -> list[ModelInfo]:
        out: list[ModelInfo] = []
        for provider in self.providers:
            try:
                out.extend(await provider.models())
            except LLMError as error:
                log.info("%s: cannot list models (%s)", provider.name, error)
        return out

    async def count_tokens(self, text: str, model: str | None = None) -> int:
        return await self.providers[0].count_tokens(text, model)

    async def context_length(self, model: str) -> int | None:
        return await self.budget.window(self.providers[0], model)

    async def health(self) -> Health:
        failures: dict[str, Exception] = {}
        for endpoint in self._top:
            health = await endpoint.health()
            if health.ok:
                return health
            failures[endpoint.label] = ProviderUnavailable(health.detail, fix=health.fix)
        error = NoProviderAvailable.of(failures)
        return Health(provider=self.name, ok=False, detail=error.message, fix=error.fix)

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    def endpoint_state(self, provider_name: str) -> EndpointState:
        for endpoint in self._top:
            if endpoint.provider.name == provider_name:
                return endpoint.state
        raise KeyError(provider_name)
