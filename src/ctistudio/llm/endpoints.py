"""Everything the router does to ONE server: its shared state, a concurrency slot per request, retries of
transient failures, cooldown, cached health and the models it has loaded.

- :class:`RouterPolicy`: retries, backoff, cooldown and health-cache settings.
- :class:`EndpointState`: for each server (each host of a :class:`~ctistudio.llm.hosts.HostSet` too) the
  failures, cooldown, requests in flight, the limit on them, its last health and the models it has loaded.
  One :class:`EndpointRegistry` is shared by every router of a gateway, so one server has one limit whichever
  provider chain reaches it.
- :class:`Endpoint`: one provider (or host) as a router calls it. Each call is one explicit attempt
  (``_attempt_chat``, ``_attempt_stream``, ``_attempt_embed``: take a slot, call the provider) repeated by
  :meth:`Endpoint._retrying` while the failure is transient (connect error, timeout, 429 honouring
  Retry-After, 5xx) with exponential backoff — never a 4xx; a host with siblings (``failover``) is not
  retried: its request moves to the next host at once.
- :func:`least_loaded`: the order in which the hosts of one provider take a request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from ctistudio.llm.errors import LLMError, ProviderError, ProviderUnavailable, RateLimited
from ctistudio.llm.provider import Provider
from ctistudio.llm.types import ChatRequest, ChatResult, EmbeddingResult, Health, StreamDelta

log = logging.getLogger(__name__)
A = TypeVar("A")
T = TypeVar("T")
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on one Retry-After
Sleep = Callable[[float], Awaitable[None]]
# An opened stream: the provider's iterator and its first delta (the slot is held until the stream ends).
OpenStream = tuple[AsyncIterator[StreamDelta], StreamDelta]


@dataclass
class RouterPolicy:
    retries: int = 2
    backoff: float = 0.5
    cooldown_failures: int = 3
    cooldown_seconds: float = 30.0
    health_ttl: float = 30.0
    check_health: bool = False  # the auto chain checks availability first; an explicit provider does not


@dataclass
class EndpointState:
    """Shared bookkeeping for one server: failures, cooldown, and requests in flight."""

    limit: int
    failures: int = 0
    cooldown_until: float = 0.0
    in_flight: int = 0
    peak_in_flight: int = 0
    assigned: int = 0  # requests routed here and not finished (waiting for a slot or in flight)
    dispatched: int = 0  # requests ever routed here
    # (checked at, ids of the models loaded there; None: the host did not answer) — for hosts of a HostSet
    inventory: tuple[float, frozenset[str] | None] | None = None
    health: tuple[float, Health] | None = None  # (checked at, what the provider's health said)
    _semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def semaphore(self) -> asyncio.Semaphore:
        """This event loop's semaphore (an asyncio primitive belongs to one loop)."""
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    def inventory_lock(self) -> asyncio.Lock:
        """This event loop's lock around the model-list probe (one probe per host at a time)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    @contextmanager
    def assignment(self) -> Iterator[None]:
        """Count a request routed here until it ends (what "least in flight" compares)."""
        self.assigned += 1
        self.dispatched += 1
        try:
            yield
        finally:
            self.assigned -= 1

    async def acquire(self) -> None:
        await self.semaphore().acquire()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1
        self.semaphore().release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def record_success(self) -> None:
        self.failures = 0
        self.cooldown_until = 0.0

    def record_failure(self, policy: RouterPolicy) -> None:
        self.failures += 1
        if self.failures >= policy.cooldown_failures:
            self.cooldown_until = time.monotonic() + policy.cooldown_seconds
            log.warning("endpoint in cooldown for %.0fs after %d failures", policy.cooldown_seconds, self.failures)

    def cooling_down(self) -> float:
        """Seconds of cooldown left (0 when usable)."""
        return max(0.0, self.cooldown_until - time.monotonic())


class EndpointRegistry:
    """Endpoint states by endpoint id, shared by every router of a gateway (one server, one limit)."""

    def __init__(self) -> None:
        self._states: dict[str, EndpointState] = {}

    def get(self, provider: Provider) -> EndpointState:
        state = self._states.get(provider.endpoint)
        if state is None:
            state = EndpointState(limit=provider.max_in_flight)
            self._states[provider.endpoint] = state
        return state


class Endpoint:
    """One provider — or one host of a :class:`~ctistudio.llm.hosts.HostSet` — as a router calls it."""

    def __init__(self, provider: Provider, state: EndpointState, policy: RouterPolicy, sleep: Sleep, label: str):
        self.provider = provider
        self.state = state
        self.policy = policy
        self.label = label  # how failures name it: the provider, and the host where it has siblings
        self._sleep = sleep

    # -- availability ----------------------------------------------------------------------------
    def cooling(self) -> ProviderUnavailable | None:
        """The reason to skip this endpoint now (cooling down after failures in a row), else ``None``."""
        left = self.state.cooling_down()
        if left <= 0:
            return None
        return ProviderUnavailable(
            f"{self.label} is cooling down for {left:.0f}s after {self.state.failures} failures in a row",
            provider=self.provider.name,
            fix="Wait, or check the server's log for why it keeps failing.",
        )

    async def health(self) -> Health:
        """The provider's health, cached ``health_ttl`` seconds."""
        cached = self.state.health
        if cached and time.monotonic() - cached[0] < self.policy.health_ttl:
            return cached[1]
        health = await self.provider.health()
        self.state.health = (time.monotonic(), health)
        return health

    def mark_unavailable(self, error: Exception) -> None:
        """After an availability failure: unhealthy until the cache expires, and no models for host spreading."""
        if isinstance(error, ProviderUnavailable | RateLimited):
            now = time.monotonic()
            self.state.health = (now, Health(provider=self.provider.name, ok=False, detail=str(error)))
            self.state.inventory = (now, None)  # a host set's other hosts take its requests

    async def loaded_models(self) -> frozenset[str] | None:
        """The models this host has loaded (its model list, cached ``health_ttl``); None when it does not answer."""
        state = self.state
        ttl = max(self.policy.health_ttl, 1.0)
        if state.inventory is not None and time.monotonic() - state.inventory[0] < ttl:
            return state.inventory[1]
        async with state.inventory_lock():
            if state.inventory is not None and time.monotonic() - state.inventory[0] < ttl:
                return state.inventory[1]
            loaded: frozenset[str] | None
            try:
                infos = await self.provider.models()
            except LLMError as error:
                log.warning("%s: model list unavailable (%s); skipping this host for %.0fs", self.label, error, ttl)
                loaded = None
            else:
                loaded = frozenset(
                    name for info in infos if info.loaded is not False for name in (info.id, *info.instances)
                )
            state.inventory = (time.monotonic(), loaded)
            return loaded

    # -- calls: (value, attempts) ------------------------------------------------------------------
    async def chat(self, request: ChatRequest, *, failover: bool = False) -> tuple[ChatResult, int]:
        return await self._retrying(self._attempt_chat, request, failover)

    async def open_stream(self, request: ChatRequest, *, failover: bool = False) -> tuple[OpenStream, int]:
        """Start streaming (retried until the first delta arrives); the slot stays held: see :meth:`relay`."""
        return await self._retrying(self._attempt_stream, request, failover)

    async def embed(
        self, texts: list[str], model: str | None, *, failover: bool = False
    ) -> tuple[EmbeddingResult, int]:
        return await self._retrying(self._attempt_embed, (texts, model), failover)

    async def relay(self, opened: OpenStream) -> AsyncGenerator[StreamDelta, None]:
        """The deltas of an opened stream; the slot is released and the stream closed when it ends or the
        caller stops early (the text already shown cannot be taken back: errors go to the caller)."""
        iterator, head = opened
        self.state.assigned += 1  # streaming: counted until the stream ends
        try:
            delta: StreamDelta | None = head
            while delta is not None:
                yield delta
                delta = await anext(iterator, None)
        finally:
            self.state.assigned -= 1
            self.state.release()
            await _close(iterator)  # the caller may stop early: close the HTTP stream now

    # -- one attempt each, and the retry loop around them -------------------------------------------
    async def _attempt_chat(self, request: ChatRequest) -> ChatResult:
        async with self.state.slot():
            return await self.provider.complete(request)

    async def _attempt_stream(self, request: ChatRequest) -> OpenStream:
        await self.state.acquire()
        iterator = aiter(self.provider.stream(request))
        try:
            return iterator, await anext(iterator)
        except BaseException:
            self.state.release()
            await _close(iterator)
            raise

    async def _attempt_embed(self, texts_and_model: tuple[list[str], str | None]) -> EmbeddingResult:
        async with self.state.slot():
            return await self.provider.embed(*texts_and_model)

    async def _retrying(self, attempt: Callable[[A], Awaitable[T]], argument: A, failover: bool) -> tuple[T, int]:
        """``attempt(argument)`` until it succeeds or fails for good; ``failover``: another host is left, so a
        failure goes there at once instead of being retried here."""
        tries = 0
        while True:
            tries += 1
            try:
                value = await attempt(argument)
            except ProviderError as error:
                if not error.transient:
                    raise
                self.state.record_failure(self.policy)
                if failover or tries > self.policy.retries or self.state.cooling_down() > 0:
                    raise
                delay = self._delay(error, tries)
                log.info("%s: %s — retry %d in %.2fs", self.provider.name, error.message, tries, delay)
                await self._sleep(delay)
                continue
            self.state.record_success()
            return value, tries

    def _delay(self, error: ProviderError, attempt: int) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER)
        base = self.policy.backoff * (2 ** (attempt - 1))
        return base + random.uniform(0, base / 4)


async def least_loaded(
    hosts: list[Endpoint], model: str | None, failures: dict[str, Exception]
) -> AsyncIterator[tuple[Endpoint, bool]]:
    """The usable hosts of one provider, least in flight first, re-chosen each time one is asked for, each
    with whether another is left.

    Hosts with ``model`` loaded come first; the others (which would load it on demand) only when every one
    of those failed. Hosts cooling down or not answering their model list are skipped (into ``failures``).
    """
    having: list[Endpoint] = []
    others: list[Endpoint] = []
    for host in hosts:
        skip = host.cooling()
        loaded = None if skip else await host.loaded_models()
        if skip is None and loaded is None:
            skip = ProviderUnavailable(
                f"{host.label} is not answering", provider=host.provider.name, fix=host.provider.fix_for("connect")
            )
        if skip is not None:
            failures[host.label] = skip
            continue
        (having if model and loaded and model in loaded else others).append(host)
    for tier in (having, others):
        while tier:
            host = min(tier, key=lambda h: (h.state.assigned, h.state.dispatched))
            tier.remove(host)
            yield host, bool(tier) or (tier is having and bool(others))


async def _close(iterator: AsyncIterator[StreamDelta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
