"""Per-endpoint bookkeeping the router keeps: its policy, and for each server (each host of a
:class:`~ctistudio.llm.hosts.HostSet` too) the failures, cooldown, requests in flight, the limit on them and
the models it has loaded. One :class:`EndpointRegistry` is shared by every router of a gateway, so one server
has one limit whichever provider chain reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from ctistudio.llm.provider import Provider

log = logging.getLogger(__name__)


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
