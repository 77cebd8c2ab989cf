"""One provider served by several inference hosts: ``LMSTUDIO_API_URL=http://gpu1:1234/v1,http://gpu2:1234/v1``.

A :class:`HostSet` is what :func:`~ctistudio.llm.providers.build_provider` returns when a provider's URL
setting lists more than one host: one provider object per host (same class, same models, its own HTTP
transport and endpoint), held together under the provider's name. The router
(:mod:`ctistudio.llm.router`) expands it with :meth:`Provider.hosts` and spreads requests over the hosts
that have the task's model loaded, least in flight first; each host keeps its own in-flight limit, health
and cooldown in the router's endpoint registry, and a host that fails moves its requests to the others.

Called directly (outside a router) a host set answers through its first host; provider-specific extras
(LM Studio's ``load``, ``supports_threads``…) are those of the first host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ctistudio.llm.provider import Provider
from ctistudio.llm.types import ChatRequest, ChatResult, EmbeddingResult, Health, ModelInfo, StreamDelta


class HostSet(Provider):
    """The hosts of one provider, in the order they were configured (the first is the primary)."""

    def __init__(self, hosts: list[Provider]) -> None:
        if len(hosts) < 2:
            raise ValueError("a host set needs at least two hosts")
        primary = hosts[0]
        super().__init__(
            name=primary.name,
            models_by_task=primary.models_by_task,
            default_model=primary.default_model,
            embedding_model=primary.embedding_model,
            max_in_flight=primary.max_in_flight,
            context_overrides=primary.context_overrides,
        )
        self._hosts = list(hosts)
        self.request_defaults = primary.request_defaults

    @property
    def primary(self) -> Provider:
        return self._hosts[0]

    def hosts(self) -> list[Provider]:
        return list(self._hosts)

    @property
    def endpoint(self) -> str:
        return ",".join(host.endpoint for host in self._hosts)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes a Provider does not have: the primary host's extras.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._hosts[0], name)

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await self.primary.complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        async for delta in self.primary.stream(request):
            yield delta

    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        return await self.primary.embed(texts, model)

    async def models(self) -> list[ModelInfo]:
        return await self.primary.models()

    async def count_tokens(self, text: str, model: str | None = None) -> int:
        return await self.primary.count_tokens(text, model)

    async def context_length(self, model: str) -> int | None:
        return await self.primary.context_length(model)

    def context_fix(self, model: str, size: int) -> str:
        return self.primary.context_fix(model, size)

    def fix_for(self, kind: str) -> str | None:
        return self.primary.fix_for(kind)

    async def health(self) -> Health:
        """Healthy while any host is: one line per host that is not."""
        reports = [await host.health() for host in self._hosts]
        healthy = [r for r in reports if r.ok]
        down = [f"{host.endpoint}: {r.detail}" for host, r in zip(self._hosts, reports, strict=True) if not r.ok]
        if healthy:
            detail = f"{len(healthy)} of {len(reports)} hosts reachable" + (f" ({'; '.join(down)})" if down else "")
            return Health(provider=self.name, ok=True, detail=detail, latency_s=healthy[0].latency_s)
        return Health(provider=self.name, ok=False, detail="; ".join(down), fix=reports[0].fix)

    async def aclose(self) -> None:
        for host in self._hosts:
            await host.aclose()
