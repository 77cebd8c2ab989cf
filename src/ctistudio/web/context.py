"""What the web app holds for its lifetime: the settings source, the gateway, health probes, services.

The services (pipeline, RAG chat …) ship in the same package and are imported directly; the one thing an
app may lack is a store (no database), which pages and endpoints report (:class:`ServiceMissing`, a 503).

Built by :func:`ctistudio.web.app.create_app` (never at import time) and reached by routes through the
``Annotated`` dependencies of :mod:`ctistudio.web.deps`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ctistudio.config import Settings, SettingsSource
from ctistudio.llm import Gateway, Health
from ctistudio.pipeline.novelty import load_novelty_judge
from ctistudio.pipeline.service import PipelineService
from ctistudio.rag import ChatService
from ctistudio.store import Store
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

NO_STORE = "no database is configured (CTISTUDIO_DATABASE_URL, or the SQLite file under CTISTUDIO_DATA_DIR)"


class ServiceMissing(Exception):
    """A page or endpoint needs what this app does not have (no store: no database is configured)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


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
    """Per-app state. ``settings()`` is always current: a saved override is picked up without a restart.

    The gateway, the pipeline service and the chat service follow the settings: each belongs to one
    settings generation and is rebuilt when a saved change makes a new one. A pipeline service of an
    earlier generation is kept only while runs it started are still going (they stay with it), then closed.
    """

    def __init__(self, source: SettingsSource, *, store: Store | None = None, bind_host: str | None = None) -> None:
        self.source = source
        self.store = store
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
        self._pipeline: tuple[Settings, PipelineService] | None = None
        self._retired_pipelines: list[PipelineService] = []
        self._chat: tuple[Settings, ChatService] | None = None
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

    def pipeline(self) -> PipelineService:
        """The pipeline service of the current settings generation (:class:`ServiceMissing` without a store)."""
        current = self.settings()
        if self._pipeline is None or self._pipeline[0] is not current:
            store = self.require_store()
            if self._pipeline is not None:
                self._retired_pipelines.append(self._pipeline[1])
            service = PipelineService(current, store, self.gateway(), novelty=load_novelty_judge(current))
            self._pipeline = (current, service)
            self.pipelines()  # drops the earlier generations that hold no runs
        return self._pipeline[1]

    def chat(self) -> ChatService:
        """The RAG chat service for the current settings (:class:`ServiceMissing` without a store)."""
        current = self.settings()
        if self._chat is None or self._chat[0] is not current:
            self._chat = (current, ChatService(self.require_store(), self.gateway()))
        return self._chat[1]

    def pipelines(self) -> list[PipelineService]:
        """The pipeline services that may hold runs (earlier generations first): a run is cancelled where it runs."""
        # earlier generations are closed once the runs they started have ended (nothing else holds them)
        self._retired_pipelines = [old for old in self._retired_pipelines if old.runner.active()]
        current = [self._pipeline[1]] if self._pipeline is not None else []
        return [*self._retired_pipelines, *current]

    def require_store(self) -> Store:
        if self.store is None:
            raise ServiceMissing("store", NO_STORE)
        return self.store

    def settings_changed(self) -> None:
        """Called after this process saved overrides: re-read them now instead of at the next poll."""
        self.source.invalidate()
        self.health.clear()

    async def aclose(self) -> None:
        await self.background.aclose()
        await asyncio.to_thread(self.worker.close)
        for service in self.pipelines():  # runs still going are marked cancelled (and can be resumed)
            await service.aclose()
        self._pipeline, self._retired_pipelines = None, []
        for gateway in [*self._retired, *([self._gateway] if self._gateway else [])]:
            try:
                await gateway.aclose()
            except Exception as exc:  # closing must not stop the shutdown of the others
                log.debug("closing a gateway failed: %s", exc)
        self._retired.clear()
        self._gateway = None
