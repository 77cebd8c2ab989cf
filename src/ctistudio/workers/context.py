"""What a worker process keeps between tasks, and how it executes one pipeline run under a lease.

One :class:`WorkerContext` per worker process: the store, the settings (re-read when someone saves new
values in the Settings page, like every other process), a gateway and pipeline dependencies per settings,
and one event loop per worker thread (kept, so HTTP connections to the LLM servers are pooled across tasks).

:meth:`WorkerContext.run_pipeline` is the whole life of a run on a worker: skip it when it already has a
final status (a redelivered or duplicate task), take its lease or come back later when another live worker
holds it, execute the unfinished steps with the lease's fence on every write while a heartbeat thread
renews the lease, and release it at the end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from functools import partial
from typing import Any, TypeVar

from ctistudio.config import Settings, SettingsSource
from ctistudio.llm import Gateway
from ctistudio.pipeline.novelty import load_novelty_judge
from ctistudio.pipeline.queued_runner import FINAL_STATUSES
from ctistudio.pipeline.runner import execute_run
from ctistudio.pipeline.service import PipelineService
from ctistudio.pipeline.steps import PipelineDeps
from ctistudio.store import Store
from ctistudio.store.run_leases import LeaseLost, acquire_lease, fence, release_lease, renew_lease
from ctistudio.store.runs import get_run

log = logging.getLogger(__name__)
T = TypeVar("T")

# A valid rule validated once at start-up: pySigma, its validators and the ATT&CK catalog load then, not
# during the worker's first run (a second or two of imports that would otherwise hold up that run).
WARM_UP_RULE = """
title: Worker warm-up
id: 0f6f1f2e-7c1a-4d0e-9a55-3c1b8e2f0a11
status: experimental
description: Validated when a worker starts.
author: ctistudio
date: 2026-01-01
references:
    - https://example.org/ctistudio/worker-warm-up
tags:
    - attack.execution
    - attack.t1059.001
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\powershell.exe'
    condition: selection
falsepositives:
    - Unknown
level: low
"""


class RunBusy(Exception):
    """Another live worker holds the run: the task comes back later (its holder may still die)."""


class _Heartbeat(threading.Thread):
    """Renews a run's lease every third of its length until stopped (a thread: a busy event loop cannot
    starve it)."""

    def __init__(self, store: Store, run_id: int, worker: str, seconds: float) -> None:
        super().__init__(name=f"lease-{run_id}", daemon=True)
        self.store, self.run_id, self.worker, self.seconds = store, run_id, worker, seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.seconds / 3):
            try:
                with self.store.session() as session:
                    if not renew_lease(session, self.run_id, self.worker, self.seconds):
                        return  # taken over or cancelled: the fence stops the run at its next write
            except Exception as error:  # the database may be away for a moment: try again next beat
                log.warning("renewing the lease of run %s failed: %s", self.run_id, error)


class WorkerContext:
    """Per-process state of a worker (see the module docstring)."""

    def __init__(self, base: Settings, *, env_file: str | None = ".env") -> None:
        self.store = Store(base)
        self.source = SettingsSource(self.store.load_settings_overrides, env_file=env_file)
        self._lock = threading.Lock()
        self._built: tuple[Settings, PipelineDeps] | None = None
        self._service: PipelineService | None = None
        self._loops = threading.local()

    def settings(self) -> Settings:
        return self.source.get()

    def deps(self) -> PipelineDeps:
        """Pipeline dependencies for the current settings (rebuilt when they change)."""
        settings = self.settings()
        with self._lock:
            if self._built is None or self._built[0] is not settings:
                deps = PipelineDeps(
                    settings=settings, store=self.store, gateway=Gateway(settings), novelty=load_novelty_judge(settings)
                )
                self._built = (settings, deps)
            return self._built[1]

    def warm_up(self) -> None:
        """Load what a first run would load (stores, gateway, pySigma, the ATT&CK catalog) before taking tasks."""
        from ctistudio.sigma.validate import validate_rule

        self.deps()
        result = validate_rule(WARM_UP_RULE)
        if not result.valid:  # the bundled rule must stay valid: say so rather than slow down silently
            log.warning("warm-up rule is not valid: %s", result)

    def run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this thread's event loop (created once per worker thread)."""
        loop = getattr(self._loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._loops.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coroutine)

    def pipeline_service(self) -> PipelineService:
        """For jobs that start runs (autorun): with a broker, its runner enqueues them for the workflow queue."""
        deps = self.deps()
        with self._lock:
            if self._service is None or self._service.settings is not deps.settings:
                self._service = PipelineService(deps.settings, deps.store, deps.gateway, novelty=deps.novelty)
            return self._service

    # -- one pipeline run ------------------------------------------------------------------------------
    def run_pipeline(self, run_id: int, worker: str) -> str:
        """Execute what is left of run ``run_id`` as ``worker``; its final status (RunBusy: try later)."""
        deps = self.deps()
        seconds = deps.settings.run_lease_seconds
        with self.store.session() as session:
            status = get_run(session, run_id).status
            if status in FINAL_STATUSES:
                log.info("run %s is already %s: nothing to do", run_id, status)
                return status
            if not acquire_lease(session, run_id, worker, seconds):
                raise RunBusy(f"run {run_id} is held by another worker")
        log.info("run %s: executing on %s", run_id, worker)
        heartbeat = _Heartbeat(self.store, run_id, worker, seconds)
        heartbeat.start()
        try:
            return self.run_async(
                execute_run(run_id, deps, fence=partial(fence, run_id=run_id, worker=worker, seconds=seconds))
            )
        except LeaseLost as lost:
            log.warning("%s", lost)
            return "taken over"
        finally:
            heartbeat.stopped.set()
            heartbeat.join(timeout=5)
            with self.store.session() as session:
                release_lease(session, run_id, worker)
