"""Runs executed by workers (``CTISTUDIO_BROKER_URL`` set): the :class:`Runner` the web app and the CLI use then.

``submit`` marks the run pending and puts it on the broker's ``workflow`` queue; a ``ctistudio worker``
executes it (:mod:`ctistudio.workers`). ``wait`` and ``subscribe`` follow the run in the store, where the
worker writes every step, so the CLI prints the same progress as with the in-process runner. ``cancel``
marks the run cancelled: its worker stops at its next write (the lease's fence refuses a cancelled run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ctistudio.broker import RUN_PIPELINE, Broker
from ctistudio.pipeline.runner import (
    InProcessRunner,
    ProgressEvent,
    ProgressSink,
    RunHeldElsewhere,
    Runner,
    step_detail,
)
from ctistudio.pipeline.steps import PipelineDeps
from ctistudio.store.run_leases import lease_holder
from ctistudio.store.runs import checkpoints, get_run, interrupted_runs, set_run_status

log = logging.getLogger(__name__)
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "gated")
NO_WORKER_WARNING_SECONDS = 15.0  # a run still pending after this long: say that a worker is needed


def runner_for(deps: PipelineDeps, *, concurrency: int | None = None) -> Runner:
    """Workers when a broker is configured, else this process (the embedded default)."""
    if deps.settings.broker_url:
        return QueuedRunner(deps, Broker(deps.settings))
    return InProcessRunner(deps, concurrency=concurrency)


class QueuedRunner:
    """Enqueues runs for workers and follows them in the store (every ``poll_seconds``)."""

    remote = True  # runs execute in worker processes: closing this process must not cancel them

    def __init__(self, deps: PipelineDeps, broker: Broker, *, poll_seconds: float = 0.25) -> None:
        self.deps = deps
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.sinks: list[ProgressSink] = []

    async def submit(self, run_id: int) -> None:
        with self.deps.store.session() as session:
            run = get_run(session, run_id)
            holder = lease_holder(run)
            if run.status not in FINAL_STATUSES and holder is not None:
                raise RunHeldElsewhere(
                    f"run {run_id} is being executed by {holder}; resuming it now would run its steps twice",
                    fix=f"Wait for it to finish (`ctistudio runs show {run_id}`) or cancel it; a run whose worker "
                    "died is taken over by another worker once its lease expires (CTISTUDIO_RUN_LEASE_SECONDS).",
                )
            if run.status in FINAL_STATUSES:  # resumed: a worker executes what has not finished yet
                set_run_status(session, run_id, "pending", force=run.force)
        await asyncio.to_thread(self.broker.enqueue, RUN_PIPELINE, run_id)

    async def wait(self, run_id: int) -> str:
        async for event in self._watch(run_id):
            for sink in self.sinks:
                sink(event)
        with self.deps.store.session() as session:
            return get_run(session, run_id).status

    async def cancel(self, run_id: int) -> None:
        with self.deps.store.session() as session:
            if get_run(session, run_id).status not in FINAL_STATUSES:
                set_run_status(session, run_id, "cancelled", error="cancelled")

    def active(self) -> list[int]:
        return []  # nothing runs in this process

    async def subscribe(self) -> AsyncIterator[ProgressEvent]:
        """Events of the runs not finished when called, as the store shows them (for a live view)."""
        with self.deps.store.session() as session:
            open_runs = [run.id for run in interrupted_runs(session)]
        queue: asyncio.Queue[ProgressEvent] = asyncio.Queue()

        async def follow(run_id: int) -> None:
            async for event in self._watch(run_id):
                queue.put_nowait(event)

        tasks = [asyncio.create_task(follow(run_id)) for run_id in open_runs]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()

    async def _watch(self, run_id: int) -> AsyncIterator[ProgressEvent]:
        """Progress events from the store's changes to the run, until it has a final status."""
        seen: dict[str, str] = {}
        started = False
        waiting_since, warned = time.monotonic(), False
        while True:
            with self.deps.store.session() as session:
                run = get_run(session, run_id)
                status, error, warnings = run.status, run.error, list(run.warnings or [])
                stored = checkpoints(session, run_id)
                steps = {name: (cp.status, dict(cp.output or {}), cp.duration_ms) for name, cp in stored.items()}
            if status == "pending" and not warned and time.monotonic() - waiting_since > NO_WORKER_WARNING_SECONDS:
                warned = True
                log.warning(
                    "run %s: no worker has taken it after %.0f s — start one: `ctistudio worker --queues workflow` "
                    "(same CTISTUDIO_BROKER_URL and database), or unset CTISTUDIO_BROKER_URL to run in this process",
                    run_id,
                    NO_WORKER_WARNING_SECONDS,
                )
            if status == "running" and not started:
                started = True
                yield ProgressEvent(run_id=run_id, kind="run_started", status=status)
            for name, (step_status, output, duration_ms) in steps.items():
                if seen.get(name) == step_status:
                    continue
                seen[name] = step_status
                yield _step_event(run_id, name, step_status, output, duration_ms)
            if status in FINAL_STATUSES:
                detail: dict[str, Any] = {"error": error} if error else {}
                if warnings:
                    detail["warnings"] = warnings
                yield ProgressEvent(run_id=run_id, kind="run_finished", status=status, detail=detail)
                return
            await asyncio.sleep(self.poll_seconds)


def _step_event(
    run_id: int, name: str, status: str, output: dict[str, Any], duration_ms: float | None
) -> ProgressEvent:
    if status == "running":
        return ProgressEvent(run_id=run_id, kind="step_started", step=name, status=status)
    if status == "failed":
        return ProgressEvent(run_id=run_id, kind="step_failed", step=name, status=status)
    detail = {**step_detail(name, output), "seconds": round((duration_ms or 0) / 1000, 2)}
    return ProgressEvent(run_id=run_id, kind="step_finished", step=name, status=status, detail=detail)
