"""What the web app holds for its lifetime: the settings source, the gateway, health probes, services.

Built by :func:`ctistudio.web.app.create_app` (never at import time) and reached by routes through the
``Annotated`` dependencies of :mod:`ctistudio.web.deps`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ctistudio.config import Settings, SettingsSource
from ctistudio.llm import Gateway, Health
from ctistudio.web.offload import BackgroundJobs, WorkerProcess
from ctistudio.web.security import (
    AuthConfig,
    HostPolicy,
    LoginThrottle,
    SessionRegistry,
    SessionSigner,
    signing_key,
)

log = logging.getLogger(__name__)

# The services the pages sit on, by short name → module. A missing one is reported, never faked.
SERVICE_MODULES: dict[str, str] = {
    "store": "ctistudio.store",
    "ingest": "ctistudio.ingest",
    "pipeline": "ctistudio.pipeline",
    "sigma": "ctistudio.sigma",
    "rag": "ctistudio.rag",
    "bench": "ctistudio.bench",
}


class ServiceMissing(Exception):
    """A page or endpoint needs a service that is not installed in this build."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


@dataclass
class Services:
    """Imports each service module once; remembers why one could not be imported."""

    modules: dict[str, ModuleType] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> Services:
        out = cls()
        for name, module_name in SERVICE_MODULES.items():
            try:
                out.modules[name] = importlib.import_module(module_name)
            except ImportError as exc:
                out.missing[name] = f"{module_name} is not available in this build ({exc})"
        return out

    def available(self, name: str) -> bool:
        return name in self.modules

    def require(self, name: str) -> ModuleType:
        if name not in self.modules:
            raise ServiceMissing(name, self.missing.get(name, f"{name} is not available"))
        return self.modules[name]


class HealthCache:
    """Provider health with a TTL; concurrent callers share one probe per provider."""

    def __init__(self, ttl: float, timeout: float = 5.0) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._values: dict[str, tuple[float, Health]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, gateway: Gateway, name: str) -> Health:
        cached = self._values.get(name)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            cached = self._values.get(name)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            health = await self._probe(gateway, name)
            self._values[name] = (time.monotonic(), health)
            return health

    async def _probe(self, gateway: Gateway, name: str) -> Health:
        try:
            provider = gateway.provider(name)
            return await asyncio.wait_for(provider.health(), self.timeout)
        except TimeoutError:
            return Health(provider=name, ok=False, detail=f"no answer within {self.timeout:.0f}s")
        except Exception as exc:  # a provider that cannot even be built is "not ok", with the reason
            return Health(provider=name, ok=False, detail=str(exc))

    def clear(self) -> None:
        self._values.clear()


class AppContext:
    """Per-app state. ``settings()`` is always current: a saved override is picked up without a restart."""

    def __init__(
        self,
        source: SettingsSource,
        services: Services | None = None,
        *,
        store: Any = None,
        bind_host: str | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.services = services or Services.discover()
        first = source.get()
        self.auth = AuthConfig.from_settings(first)
        self.hosts = HostPolicy.from_settings(first, bind_host)
        self.throttle = LoginThrottle()
        self.sessions = SessionRegistry(first.data_dir / "revoked-sessions.json")
        self.signer = SessionSigner(signing_key(first))
        self.health = HealthCache(ttl=first.health_ttl)
        self._gateway: Gateway | None = None
        self._gateway_settings: Settings | None = None
        self._retired: list[Gateway] = []
        self._pipelines: list[tuple[Settings, Any]] = []
        self._chat: tuple[Settings, Any] | None = None
        self.background = BackgroundJobs()
        self.worker = WorkerProcess()

    def settings(self) -> Settings:
        return self.source.get()

    def gateway(self) -> Gateway:
        """The gateway for the current settings; rebuilt (and health forgotten) when settings change."""
        current = self.settings()
        if self._gateway is None or current is not self._gateway_settings:
            if self._gateway is not None:
                self._retired.append(self._gateway)  # closed at shutdown: requests may still use it
                self.health.clear()
            self._gateway = Gateway(current)
            self._gateway_settings = current
        return self._gateway

    def pipeline(self) -> Any:
        """The pipeline service for the current settings; runs started earlier stay with their service."""
        self.services.require("pipeline")
        try:
            from ctistudio.pipeline.novelty import load_novelty_judge
            from ctistudio.pipeline.service import PipelineService
        except ImportError as exc:
            raise ServiceMissing("pipeline", f"this build has no pipeline service ({exc})") from exc
        current = self.settings()
        if not self._pipelines or self._pipelines[-1][0] is not current:
            service = PipelineService(
                current, self.require_store(), self.gateway(), novelty=load_novelty_judge(current)
            )
            self._pipelines.append((current, service))
        return self._pipelines[-1][1]

    def chat(self) -> Any:
        """The RAG chat service for the current settings (ServiceMissing without ctistudio.rag)."""
        chat_service = getattr(self.services.require("rag"), "ChatService", None)
        if chat_service is None:
            raise ServiceMissing("rag", "this build of ctistudio.rag has no chat service yet")
        current = self.settings()
        if self._chat is None or self._chat[0] is not current:
            self._chat = (current, chat_service(self.require_store(), self.gateway()))
        return self._chat[1]

    def pipelines(self) -> list[Any]:
        """Every pipeline service this app built (newest last): a run is cancelled where it runs."""
        return [service for _, service in self._pipelines]

    def require_store(self) -> Any:
        if self.store is None:
            raise ServiceMissing("store", self.services.missing.get("store", "no database is configured"))
        return self.store

    def settings_changed(self) -> None:
        """Called after this process saved overrides: re-read them now instead of at the next poll."""
        self.source.invalidate()
        self.health.clear()

    async def aclose(self) -> None:
        await self.background.aclose()
        await asyncio.to_thread(self.worker.close)
        for _, service in self._pipelines:  # runs still going are marked cancelled (and can be resumed)
            for run_id in getattr(service.runner, "active", list)():
                await service.runner.cancel(run_id)
        for gateway in [*self._retired, *([self._gateway] if self._gateway else [])]:
            try:
                await gateway.aclose()
            except Exception as exc:  # closing must not stop the shutdown of the others
                log.debug("closing a gateway failed: %s", exc)
        self._retired.clear()
        self._gateway = None
