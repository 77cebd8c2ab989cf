"""The router: a provider that wraps an ordered chain of providers.

What it adds, all driven by exception types (never by provider names):

- task → model resolution (each provider knows its model per task);
- the fallback chain: on an availability failure (unreachable, rate limited past retries, model missing,
  refused key) or a context overflow, the next provider is tried;
- retries of *transient* failures only (connect error, timeout, 429 honouring Retry-After, 5xx), with
  exponential backoff — never of a 4xx;
- cooldown: an endpoint that failed ``cooldown_failures`` times in a row is skipped for a while;
- availability checks with a TTL cache when walking the ``auto`` chain;
- a per-endpoint limit on requests in flight, so callers can fan out freely;
- several hosts per provider (a :class:`~ctistudio.llm.hosts.HostSet`): requests go to the hosts that have
  the task's model loaded, least in flight first (ties: the host used least), each host with its own limit,
  health and cooldown; a host that fails (unreachable, dropped, 5xx, 429) moves the request to the next host
  at once, without the retries a lone host gets;
- context fitting before sending, and on an overflow reported by the server one re-budget with the
  reported numbers (never a blind retry).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ctistudio.llm.context import fit_request, window_for
from ctistudio.llm.endpoints import EndpointRegistry, EndpointState, RouterPolicy
from ctistudio.llm.errors import (
    AuthenticationFailed,
    ContextOverflow,
    LLMError,
    ModelNotLoaded,
    NoProviderAvailable,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Unsupported,
)
from ctistudio.llm.provider import TOKENS_PER_MESSAGE_ESTIMATE, Provider
from ctistudio.llm.types import ChatRequest, ChatResult, ContextFit, EmbeddingResult, Health, ModelInfo, StreamDelta

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
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on one Retry-After


class Router(Provider):
    """A provider over an ordered chain of providers (see the module docstring for the rules)."""

    name = "router"

    def __init__(
        self,
        providers: list[Provider],
        *,
        policy: RouterPolicy | None = None,
        endpoints: EndpointRegistry | None = None,
        health_cache: dict[str, tuple[float, Health]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(name="auto" if len(providers) != 1 else providers[0].name)
        if not providers:
            raise NoProviderAvailable(
                "no LLM provider is enabled",
                fix="Enable one (LMSTUDIO_ENABLED=true, LLAMACPP_ENABLED=true …) or keep CTISTUDIO_EMBEDDED=true.",
            )
        self.providers = providers
        self.groups = [provider.hosts() for provider in providers]
        # endpoints of hosts that have siblings: failures are labelled with the host, not just the provider
        self._multi_host = {host.endpoint for group in self.groups if len(group) > 1 for host in group}
        self.policy = policy or RouterPolicy()
        self.endpoints = endpoints or EndpointRegistry()
        self._health_cache = health_cache if health_cache is not None else {}
        # (endpoint, model) -> (expires at, loaded window); the window can change when a model is reloaded
        self._context_cache: dict[tuple[str, str], tuple[float, int | None]] = {}
        # (endpoint, model) -> factor by which the server's token counts exceed our estimate (learned on overflow)
        self._token_scale: dict[tuple[str, str], float] = {}
        self._sleep = sleep

    # -- chain walking ---------------------------------------------------------------------------
    async def _candidates(
        self, failures: dict[str, Exception], request: ChatRequest | None = None, embedding_model: str | None = None
    ) -> AsyncIterator[tuple[Provider, ChatRequest | None, bool]]:
        """``(provider or host, the request with its model resolved there, whether a sibling host is left)``."""
        first = True
        for provider, hosts in zip(self.providers, self.groups, strict=True):
            resolved = self._resolve(provider, request, first) if request is not None else None
            if len(hosts) > 1:
                model = resolved.model if resolved is not None else (embedding_model or provider.embedding_model)
                async for host, more in self._spread(hosts, model, failures):
                    first = False
                    yield host, resolved, more
                continue
            if self._cooling(provider, failures):
                continue
            if self.policy.check_health and len(self.providers) > 1:
                health = await self._health_of(provider)
                if not health.ok:
                    failures[provider.name] = ProviderUnavailable(health.detail, provider=provider.name, fix=health.fix)
                    continue
            first = False
            yield provider, resolved, False

    def _cooling(self, provider: Provider, failures: dict[str, Exception]) -> bool:
        state = self.endpoints.get(provider)
        left = state.cooling_down()
        if left > 0:
            failures[self._label(provider)] = ProviderUnavailable(
                f"{self._label(provider)} is cooling down for {left:.0f}s after {state.failures} failures in a row",
                provider=provider.name,
                fix="Wait, or check the server's log for why it keeps failing.",
            )
        return left > 0

    def _label(self, provider: Provider) -> str:
        return f"{provider.name} ({provider.endpoint})" if provider.endpoint in self._multi_host else provider.name

    async def _spread(
        self, hosts: list[Provider], model: str | None, failures: dict[str, Exception]
    ) -> AsyncIterator[tuple[Provider, bool]]:
        """The usable hosts, least in flight first, re-chosen each time one is asked for.

        Hosts with ``model`` loaded come first; the others (which would load it on demand) only when
        every one of those failed. Hosts cooling down or not answering their model list are skipped.
        """
        having: list[Provider] = []
        others: list[Provider] = []
        for host in hosts:
            if self._cooling(host, failures):
                continue
            loaded = await self._inventory(host)
            if loaded is None:
                failures[self._label(host)] = ProviderUnavailable(
                    f"{self._label(host)} is not answering",
                    provider=host.name,
                    fix=host.fix_for("connect"),
                )
                continue
            (having if model and model in loaded else others).append(host)
        for tier in (having, others):
            while tier:
                host = min(tier, key=lambda h: (self.endpoints.get(h).assigned, self.endpoints.get(h).dispatched))
                tier.remove(host)
                yield host, bool(tier) or (tier is having and bool(others))

    async def _inventory(self, host: Provider) -> frozenset[str] | None:
        """The models ``host`` has loaded (its model list, cached ``health_ttl``); None when it does not answer."""
        state = self.endpoints.get(host)
        ttl = max(self.policy.health_ttl, 1.0)
        if state.inventory is not None and time.monotonic() - state.inventory[0] < ttl:
            return state.inventory[1]
        async with state.inventory_lock():
            if state.inventory is not None and time.monotonic() - state.inventory[0] < ttl:
                return state.inventory[1]
            loaded: frozenset[str] | None
            try:
                infos = await host.models()
            except LLMError as error:
                log.warning("%s: model list unavailable (%s); skipping this host for %.0fs", host.endpoint, error, ttl)
                loaded = None
            else:
                loaded = frozenset(
                    name for info in infos if info.loaded is not False for name in (info.id, *info.instances)
                )
            state.inventory = (time.monotonic(), loaded)
            return loaded

    async def _health_of(self, provider: Provider) -> Health:
        cached = self._health_cache.get(provider.endpoint)
        if cached and time.monotonic() - cached[0] < self.policy.health_ttl:
            return cached[1]
        health = await provider.health()
        self._health_cache[provider.endpoint] = (time.monotonic(), health)
        return health

    def _mark_unavailable(self, provider: Provider, error: Exception) -> None:
        if isinstance(error, ProviderUnavailable | RateLimited):
            now = time.monotonic()
            self._health_cache[provider.endpoint] = (now, Health(provider=provider.name, ok=False, detail=str(error)))
            self.endpoints.get(provider).inventory = (now, None)  # a host set's other hosts take its requests

    def _resolve(self, provider: Provider, request: ChatRequest, first: bool) -> ChatRequest:
        # An explicit model names a model of the first provider tried; the others use their task model.
        model = request.model if (request.model and first) else provider.model_for(request.task)
        return request.model_copy(update={"model": model})

    def _give_up(self, failures: dict[str, Exception]) -> LLMError:
        if len(failures) == 1:
            error = next(iter(failures.values()))
            if isinstance(error, LLMError):
                return error
        if failures and all(isinstance(e, ContextOverflow) for e in failures.values()):
            return next(iter(failures.values()))  # type: ignore[return-value]
        summary = "; ".join(_labelled(name, getattr(e, "message", str(e))) for name, e in failures.items())
        fixes = {_labelled(name, e.fix) for name, e in failures.items() if getattr(e, "fix", None)}  # type: ignore[attr-defined]
        return NoProviderAvailable(
            f"no provider could answer ({summary or 'no provider configured'})",
            failures=failures,
            fix=" | ".join(sorted(fixes)) or None,
        )

    # -- retries -----------------------------------------------------------------------------------
    async def _with_retries(
        self, provider: Provider, call: Callable[[], Awaitable[T]], *, failover: bool = False
    ) -> tuple[T, int]:
        """Call with retries of transient failures; ``failover``: another host is left, so go there at once."""
        state = self.endpoints.get(provider)
        attempt = 0
        while True:
            attempt += 1
            try:
                value = await call()
            except ProviderError as error:
                if not error.transient:
                    raise
                state.record_failure(self.policy)
                if failover or attempt > self.policy.retries or state.cooling_down() > 0:
                    raise
                delay = self._delay(error, attempt)
                log.info("%s: %s — retry %d in %.2fs", provider.name, error.message, attempt, delay)
                await self._sleep(delay)
                continue
            state.record_success()
            return value, attempt

    def _delay(self, error: ProviderError, attempt: int) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER)
        base = self.policy.backoff * (2 ** (attempt - 1))
        return base + random.uniform(0, base / 4)

    # -- context ----------------------------------------------------------------------------------
    async def _window(self, provider: Provider, model: str) -> int | None:
        """The model's loaded window, cached for ``health_ttl`` seconds (one model-list call per period)."""
        key = (provider.endpoint, model)
        cached = self._context_cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            window = await provider.context_length(model)
        except ProviderError as error:
            log.debug("%s: context length of %s unknown (%s)", provider.name, model, error)
            return None
        self._context_cache[key] = (now + max(self.policy.health_ttl, 1.0), window)
        return window

    def _counter(self, provider: Provider, model: str, scale: float | None = None) -> Callable[[str], Awaitable[int]]:
        factor = scale if scale is not None else self._token_scale.get((provider.endpoint, model), 1.0)

        async def count(text: str) -> int:
            tokens = await provider.count_tokens(text, model)
            return tokens if factor == 1.0 else math.ceil(tokens * factor)

        return count

    async def _fit(
        self, provider: Provider, request: ChatRequest, window: int | None, scale: float | None = None
    ) -> tuple[ChatRequest, ContextFit]:
        count = self._counter(provider, request.model or "", scale)
        return await fit_request(request, context_length=window, count=count, provider=provider)

    async def _run_on(
        self,
        provider: Provider,
        request: ChatRequest,
        make_call: Callable[[ChatRequest], Awaitable[T]],
        *,
        failover: bool = False,
    ) -> tuple[T, ContextFit, int]:
        """Fit ``request`` to the provider's window and run ``make_call`` with retries.

        On an overflow reported by the server the request is fitted again ONCE with the reported numbers;
        when that changes nothing, or the server overflows again, the overflow goes up (→ next provider).
        """
        model = request.model or ""
        window = await self._window(provider, model)
        fitted, fit = await self._fit(provider, request, window)
        try:
            value, attempts = await self._with_retries(provider, lambda: make_call(fitted), failover=failover)
        except ContextOverflow as overflow:
            self._explain(provider, fitted, overflow)
            fitted, fit = await self._rebudget(provider, request, fitted, overflow, window)
            value, attempts = await self._with_retries(provider, lambda: make_call(fitted), failover=failover)
        return value, fit, attempts

    @staticmethod
    def _explain(provider: Provider, sent: ChatRequest, overflow: ContextOverflow) -> None:
        """Give a server-reported overflow the model and the exact command that fixes it."""
        overflow.model = overflow.model or sent.model
        overflow.provider = overflow.provider or provider.name
        if overflow.prompt_tokens and sent.model:
            overflow.fix = provider.context_fix(
                sent.model, window_for(overflow.prompt_tokens + sent.max_tokens, sent.task)
            )

    async def _rebudget(
        self,
        provider: Provider,
        request: ChatRequest,
        sent: ChatRequest,
        overflow: ContextOverflow,
        known: int | None,
    ) -> tuple[ChatRequest, ContextFit]:
        """Fit ``request`` again with the window and token count the server reported.

        When the server counted more prompt tokens than we estimated, our counts are scaled up by that
        factor (remembered for the next calls). Raises ``overflow`` when the new fit would send the same
        request again: that would be a blind retry.
        """
        model = request.model or ""
        key = (provider.endpoint, model)
        count = self._counter(provider, model, 1.0)
        estimate = sum([await count(m.content) for m in sent.messages]) + TOKENS_PER_MESSAGE_ESTIMATE * len(
            sent.messages
        )
        scale = self._token_scale.get(key, 1.0)
        if overflow.prompt_tokens and estimate:
            scale = max(scale, overflow.prompt_tokens / estimate)
            self._token_scale[key] = scale
        window = overflow.context_length
        if not window:
            self._context_cache.pop(key, None)
            fresh = await self._window(provider, model)
            window = fresh if fresh and fresh != known else None
        if not window:
            # The server gave no numbers: assume a window a quarter smaller than what we sent.
            window = int((overflow.prompt_tokens or estimate * scale) * 0.75) + sent.max_tokens
        self._context_cache[key] = (time.monotonic() + max(self.policy.health_ttl, 1.0), window)
        log.info("%s: server reported overflow; re-fitting %s to a %d-token window", provider.name, model, window)
        try:
            fitted, fit = await self._fit(provider, request, window, scale)
        except ContextOverflow:
            raise overflow from None  # nothing can be cut: the server's own numbers tell the story
        if fitted.messages == sent.messages and fitted.max_tokens >= sent.max_tokens:
            raise overflow
        return fitted, fit

    # -- chat ---------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        failures: dict[str, Exception] = {}
        async for provider, resolved, more in self._candidates(failures, request):
            assert resolved is not None
            state = self.endpoints.get(provider)

            async def call(req: ChatRequest, p: Provider = provider, st: EndpointState = state) -> ChatResult:
                async with st.slot():
                    return await p.complete(req)

            try:
                with state.assignment():
                    result, fit, attempts = await self._run_on(provider, resolved, call, failover=more)
            except FALLBACK_ERRORS as error:
                log.warning("%s failed: %s", self._label(provider), error)
                failures[self._label(provider)] = error
                self._mark_unavailable(provider, error)
                continue
            result.fit = fit
            result.attempts = attempts
            return result
        raise self._give_up(failures)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamDelta, None]:
        """Stream from the first provider that starts answering.

        Retries and fallback apply until the first delta arrives; an error after that is the caller's
        (the text already shown cannot be taken back).
        """
        failures: dict[str, Exception] = {}
        async for provider, resolved, more in self._candidates(failures, request):
            assert resolved is not None
            state = self.endpoints.get(provider)

            async def open_stream(
                req: ChatRequest, p: Provider = provider, st: EndpointState = state
            ) -> tuple[AsyncIterator[StreamDelta], StreamDelta]:
                await st.acquire()
                iterator = aiter(p.stream(req))
                try:
                    return iterator, await anext(iterator)
                except BaseException:
                    st.release()
                    await _close(iterator)
                    raise

            try:
                with state.assignment():
                    (iterator, head), fit, attempts = await self._run_on(provider, resolved, open_stream, failover=more)
            except FALLBACK_ERRORS as error:
                failures[self._label(provider)] = error
                self._mark_unavailable(provider, error)
                continue
            state.assigned += 1  # streaming: counted until the stream ends
            try:
                delta: StreamDelta | None = head
                while delta is not None:
                    if delta.result is not None:
                        delta.result.fit = fit
                        delta.result.attempts = attempts
                    yield delta
                    delta = await anext(iterator, None)
            finally:
                state.assigned -= 1
                state.release()
                await _close(iterator)  # the caller may stop early: close the HTTP stream now
            return
        raise self._give_up(failures)

    # -- the rest of the provider interface ---------------------------------------------------------------
    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        failures: dict[str, Exception] = {}
        async for provider, _, more in self._candidates(failures, embedding_model=model):
            state = self.endpoints.get(provider)

            async def call(p: Provider = provider, st: EndpointState = state) -> EmbeddingResult:
                async with st.slot():
                    return await p.embed(texts, model)

            try:
                with state.assignment():
                    result, _ = await self._with_retries(provider, call, failover=more)
                return result
            except FALLBACK_ERRORS as error:
                failures[self._label(provider)] = error
                self._mark_unavailable(provider, error)
        raise self._give_up(failures)

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
        return await self._window(self.providers[0], model)

    async def health(self) -> Health:
        failures: dict[str, Exception] = {}
        for provider in self.providers:
            health = await self._health_of(provider)
            if health.ok:
                return health
            failures[provider.name] = ProviderUnavailable(health.detail, fix=health.fix)
        error = self._give_up(failures)
        return Health(provider=self.name, ok=False, detail=error.message, fix=error.fix)

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    def endpoint_state(self, provider_name: str) -> EndpointState:
        for provider in self.providers:
            if provider.name == provider_name:
                return self.endpoints.get(provider)
        raise KeyError(provider_name)


def _labelled(name: str, text: str) -> str:
    """``name: text`` unless the text already starts with the provider's name."""
    return text if text.startswith(f"{name}:") or text.startswith(f"{name} ") else f"{name}: {text}"


async def _close(iterator: AsyncIterator[StreamDelta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
