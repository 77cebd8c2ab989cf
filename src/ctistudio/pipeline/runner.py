"""Running pipeline runs: step by step, resumable, observable.

:func:`execute_run` walks the steps in order and skips every step whose checkpoint says it finished, so a
run killed at any point resumes from its last finished step. :func:`execute_step` runs one step and commits
its outputs and checkpoint together. A :class:`Runner` decides *where* runs execute; the default
:class:`InProcessRunner` runs them as asyncio tasks in this process, several at once (the gateway's
per-endpoint limit keeps the LLM servers at their concurrency). Workers on other machines
(:mod:`ctistudio.workers`) call :func:`execute_run` there with a ``fence``: a check run inside every write
transaction that stops a worker whose run was taken over (see :mod:`ctistudio.store.run_leases`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ctistudio.errors import Conflict, CtiStudioError
from ctistudio.pipeline.run_warnings import run_warnings
from ctistudio.pipeline.steps import STEP_NAMES, STEPS, PipelineDeps, StepResult
from ctistudio.store.run_leases import LeaseLost, acquire_lease, fence, release_lease, renew_lease
from ctistudio.store.runs import (
    FINISHED_STEP_STATUSES,
    checkpoints,
    finish_step,
    get_run,
    set_run_model,
    set_run_status,
    start_step,
)

log = logging.getLogger(__name__)


class ProgressEvent(BaseModel):
    """One thing that happened to a run (what the CLI's progress and the web app's live view show)."""

    run_id: int
    kind: str  # run_started | step_started | step_finished | step_cached | step_failed | run_finished
    step: str | None = None
    status: str | None = None  # the step's or the run's status
    detail: dict[str, Any] = Field(default_factory=dict)
    at: float = Field(default_factory=time.time)


ProgressSink = Callable[[ProgressEvent], None]
# Called first in every transaction that writes the run; raises LeaseLost when this process no longer holds it.
Fence = Callable[[Session], None]


def _unfenced(session: Session) -> None:
    return None


def step_detail(name: str, out: dict[str, Any]) -> dict[str, Any]:
    """A few figures from a step's output for progress displays (the full output is in the checkpoint)."""
    pick = {
        "prepare": ("kept_chars", "chars", "platforms"),
        "rank": ("score", "band", "threshold", "passed"),
        "extract": ("counts", "dropped"),
        "sigma": ("valid", "invalid", "by_origin"),
        "novelty": ("summary", "queued", "reason"),
    }.get(name, ())
    return {k: out[k] for k in pick if k in out}


async def execute_step(
    run_id: int, name: str, deps: PipelineDeps, sink: ProgressSink | None = None, *, fence: Fence = _unfenced
) -> StepResult:
    """Run step ``name`` of run ``run_id`` and store its outputs and checkpoint in one transaction."""
    with deps.store.session() as session:
        fence(session)
        start_step(session, run_id, name)
        set_run_status(session, run_id, "running", current_step=name)
    if sink:
        sink(ProgressEvent(run_id=run_id, kind="step_started", step=name, status="running"))
    started = time.perf_counter()
    try:
        result = await STEPS[name](run_id, deps)
    except CtiStudioError as error:
        with deps.store.session() as session:
            fence(session)
            finish_step(session, run_id, name, status="failed", output={}, error=str(error))
        raise
    duration_ms = (time.perf_counter() - started) * 1000
    usage = result.usage
    provider, _, model = (usage.models[0] if usage.models else "/").partition("/")
    with deps.store.session() as session:
        fence(session)
        if result.persist is not None:
            result.persist(session)
        finish_step(
            session,
            run_id,
            name,
            status=result.status,
            output=result.output,
            provider=provider or None,
            model=model or None,
            prompt_tokens=usage.prompt_tokens if usage.calls else None,
            completion_tokens=usage.completion_tokens if usage.calls else None,
            duration_ms=round(duration_ms, 1),
            timings={
                "llm_seconds": round(usage.llm_seconds, 3),
                "calls": usage.calls,
                "failed_calls": usage.failed_calls,
                "cached_tokens": usage.cached_tokens,
                "models": usage.models,
            },
        )
        if usage.models:
            set_run_model(session, run_id, provider or None, model or None)
    if sink:
        detail = {**step_detail(name, result.output), "seconds": round(duration_ms / 1000, 2)}
        sink(ProgressEvent(run_id=run_id, kind="step_finished", step=name, status=result.status, detail=detail))
    return result


async def execute_run(
    run_id: int, deps: PipelineDeps, sink: ProgressSink | None = None, *, fence: Fence = _unfenced
) -> str:
    """Run every step of ``run_id`` that has not finished yet; returns the run's final status."""
    with deps.store.session() as session:
        fence(session)
        run = get_run(session, run_id)
        done = {name for name, cp in checkpoints(session, run_id).items() if cp.status in FINISHED_STEP_STATUSES}
        set_run_status(session, run_id, "running", current_step=None, force=run.force)
    if sink:
        sink(ProgressEvent(run_id=run_id, kind="run_started", status="running", detail={"resumed": sorted(done)}))
    status = "succeeded"
    error: str | None = None
    try:
        for name in STEP_NAMES:
            if name in done:
                if sink:
                    sink(ProgressEvent(run_id=run_id, kind="step_cached", step=name, status="succeeded"))
                continue
            result = await execute_step(run_id, name, deps, sink, fence=fence)
            if result.gated:
                status = "gated"
                break
    except CtiStudioError as failure:
        status, error = "failed", str(failure)
        if sink:
            sink(ProgressEvent(run_id=run_id, kind="step_failed", status="failed", detail={"error": error}))
    except asyncio.CancelledError:
        with deps.store.session() as session:
            fence(session)
            set_run_status(session, run_id, "cancelled", error="cancelled")
        raise
    except LeaseLost:
        raise  # the run goes on with the worker that took it over: nothing to record here
    except Exception as bug:  # record the failure on the run, then let the bug surface
        with deps.store.session() as session:
            fence(session)
            set_run_status(session, run_id, "failed", error=f"internal error: {type(bug).__name__}: {bug}")
        raise
    with deps.store.session() as session:
        fence(session)
        outputs = {name: cp.output for name, cp in checkpoints(session, run_id).items()}
        warnings = run_warnings(outputs) if status != "failed" else []
        set_run_status(session, run_id, status, error=error, warnings=warnings)
    if sink:
        detail: dict[str, Any] = {"error": error} if error else {}
        if warnings:
            detail["warnings"] = warnings
        sink(ProgressEvent(run_id=run_id, kind="run_finished", status=status, detail=detail))
    return status


class Runner(Protocol):
    """Where runs execute. ``submit`` returns at once; ``wait`` until the run has a final status;
    ``cancel`` stops a run this runner executes or follows; ``active`` lists those not finished in this
    process. ``remote``: runs execute elsewhere (workers), so any run may be cancelled through it."""

    remote: bool
    sinks: list[ProgressSink]  # called with every event of the runs it waits for

    async def submit(self, run_id: int) -> None: ...

    async def wait(self, run_id: int) -> str: ...

    async def cancel(self, run_id: int) -> None: ...

    def active(self) -> list[int]: ...

    def subscribe(self) -> AsyncIterator[ProgressEvent]: ...


class RunHeldElsewhere(Conflict):
    """Another process executes the run now (it holds the run's lease): starting it here too would run its
    steps twice."""


class InProcessRunner:
    """Runs as asyncio tasks in this process, at most ``concurrency`` runs at a time.

    Each run is leased to this process (:mod:`ctistudio.store.run_leases`) from ``submit`` to its end and
    its writes are fenced, like a worker's: a ``runs resume`` of a run that another process executes is
    refused with :class:`RunHeldElsewhere` instead of running it twice.
    """

    remote = False  # runs execute in this process

    def __init__(self, deps: PipelineDeps, *, concurrency: int | None = None) -> None:
        self.deps = deps
        self.concurrency = concurrency or deps.settings.max_in_flight
        self.worker = f"process {os.getpid()}@{socket.gethostname()}"
        self._slots: asyncio.Semaphore | None = None
        self._tasks: dict[int, asyncio.Task[str]] = {}
        self._queues: list[asyncio.Queue[ProgressEvent]] = []
        self.sinks: list[ProgressSink] = []

    def _emit(self, event: ProgressEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
        for sink in self.sinks:
            sink(event)

    async def _run(self, run_id: int) -> str:
        seconds = self.deps.settings.run_lease_seconds
        heartbeat = asyncio.create_task(self._renew(run_id, seconds), name=f"pipeline-run-{run_id}-lease")
        try:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.concurrency)
            async with self._slots:
                fenced = partial(fence, run_id=run_id, worker=self.worker, seconds=seconds)
                return await execute_run(run_id, self.deps, self._emit, fence=fenced)
        except LeaseLost as lost:  # cancelled, or taken over after this process stalled past its lease
            log.warning("%s", lost)
            with self.deps.store.session() as session:
                return get_run(session, run_id).status
        finally:
            heartbeat.cancel()
            with self.deps.store.session() as session:
                release_lease(session, run_id, self.worker)

    async def _renew(self, run_id: int, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            with self.deps.store.session() as session:
                renew_lease(session, run_id, self.worker, seconds)

    async def submit(self, run_id: int) -> None:
        running = self._tasks.get(run_id)
        if running is not None and not running.done():
            return  # already running: submitting twice must not run the steps twice
        with self.deps.store.session() as session:
            if not acquire_lease(session, run_id, self.worker, self.deps.settings.run_lease_seconds):
                run = get_run(session, run_id)
                raise RunHeldElsewhere(
                    f"run {run_id} is being executed by {run.worker} (its lease runs until "
                    f"{run.lease_expires_at:%H:%M:%S} UTC); starting it here too would run its steps twice",
                    fix=f"Wait for it to finish (`ctistudio runs show {run_id}`) or cancel it there; if that "
                    "process died, the run can be resumed once its lease expires (CTISTUDIO_RUN_LEASE_SECONDS).",
                )
            if get_run(session, run_id).status == "cancelled":  # resumed: the fence stops cancelled runs
                set_run_status(session, run_id, "pending")
        self._tasks[run_id] = asyncio.create_task(self._run(run_id), name=f"pipeline-run-{run_id}")

    async def wait(self, run_id: int) -> str:
        task = self._tasks.get(run_id)
        if task is None:
            with self.deps.store.session() as session:
                return get_run(session, run_id).status
        return await task

    async def wait_all(self) -> dict[int, str]:
        return {run_id: await task for run_id, task in list(self._tasks.items())}

    async def cancel(self, run_id: int) -> None:
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def active(self) -> list[int]:
        return [run_id for run_id, task in self._tasks.items() if not task.done()]

    async def subscribe(self) -> AsyncIterator[ProgressEvent]:
        """Every event of every run from now on (a web app filters by ``run_id``)."""
        queue: asyncio.Queue[ProgressEvent] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
