"""The pipeline as a service: what the CLI and the web app call.

    service = PipelineService(settings, store, gateway)          # or PipelineService.open(settings)
    run_id = await service.start_run(article_id, provider=None, force=False)   # returns at once
    async for event in service.events(): ...                     # ProgressEvent, live
    view = service.run_view(run_id)                              # RunView: steps, figures, rules + verdicts
    await service.wait(run_id)                                   # the final status
    await service.resume_run(run_id, from_step="sigma")          # after a crash, or to redo later steps

Queue actions live in :class:`ctistudio.pipeline.review.ReviewQueue` (``service.queue``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.config import Settings
from ctistudio.errors import InvalidInput
from ctistudio.llm import Gateway
from ctistudio.pipeline.extract import prompt_names as extract_prompt_names
from ctistudio.pipeline.junk import LinearChunkClassifier
from ctistudio.pipeline.novelty import NoveltyJudge, load_novelty_judge
from ctistudio.pipeline.prompts import prompt_versions
from ctistudio.pipeline.queued_runner import runner_for
from ctistudio.pipeline.rank import RANK_PROMPT
from ctistudio.pipeline.review import ReviewQueue, RuleView, rule_view
from ctistudio.pipeline.runner import ProgressEvent, RunHeldElsewhere, Runner
from ctistudio.pipeline.steps import STEP_NAMES, PipelineDeps
from ctistudio.store import Store
from ctistudio.store.articles import get_article
from ctistudio.store.models import PipelineRun
from ctistudio.store.rules import run_rules
from ctistudio.store.run_leases import lease_holder
from ctistudio.store.runs import checkpoints, create_run, get_run, list_runs, observable_counts, reset_steps

PROMPTS = [RANK_PROMPT, *extract_prompt_names(), "sigma_generate"]
_SECRET_FIELDS = ("api_key", "password", "secret", "token")


def config_snapshot(settings: Settings) -> dict[str, Any]:
    """Every setting a run ran under, secrets replaced by whether they were set."""
    data = settings.model_dump(mode="json")
    return {key: (value is not None) if any(s in key for s in _SECRET_FIELDS) else value for key, value in data.items()}


class StepView(BaseModel):
    name: str
    status: str  # pending | running | succeeded | skipped | failed
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    duration_ms: float | None = None
    attempts: int = 0
    error: str | None = None
    output: dict[str, Any] = Field(default_factory=dict)


class RunView(BaseModel):
    """A run as the CLI (``runs show --json``) and the web app present it."""

    id: int
    article_id: int
    article_title: str
    status: str  # pending | running | succeeded | failed | cancelled | gated
    current_step: str | None
    # what of a finished run's output is a deterministic floor, not the model's (run_warnings); empty: clean
    warnings: list[str] = Field(default_factory=list)
    force: bool
    provider: str | None
    model: str | None
    error: str | None
    worker: str | None = None  # the worker that executes (or last executed) the run, with CTISTUDIO_BROKER_URL
    worker_active: bool = False  # that worker holds the run now (its lease is current)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    prompt_versions: dict[str, Any]
    steps: list[StepView]
    observables: dict[str, int]
    rules: list[RuleView]
    config_snapshot: dict[str, Any] = Field(default_factory=dict)


class RunSummary(BaseModel):
    id: int
    article_id: int
    status: str
    current_step: str | None
    warnings: list[str] = Field(default_factory=list)
    score: int | None = None
    rules: int = 0
    worker: str | None = None
    worker_active: bool = False
    created_at: datetime
    finished_at: datetime | None


class PipelineService:
    """Starts, resumes and shows pipeline runs; owns the runner and the review queue."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        gateway: Gateway,
        *,
        novelty: NoveltyJudge | None = None,
        runner: Runner | None = None,
        concurrency: int | None = None,
        junk_classifier: LinearChunkClassifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.deps = PipelineDeps(
            settings=settings, store=store, gateway=gateway, novelty=novelty, junk_classifier=junk_classifier
        )
        # workers when CTISTUDIO_BROKER_URL is set, else this process
        self.runner: Runner = runner or runner_for(self.deps, concurrency=concurrency)
        self.queue = ReviewQueue(store, novelty)

    # -- runs ----------------------------------------------------------------------------------------------
    def create_run(self, article_id: int, *, provider: str | None = None, force: bool = False) -> int:
        """A new pending run of ``article_id`` with this process's configuration and prompt versions."""
        if provider is not None:
            self.gateway.chain_names(provider)  # an unknown provider fails here, not halfway through a run
        with self.store.session() as session:
            get_article(session, article_id)
            run = create_run(
                session,
                article_id,
                force=force,
                provider=provider,
                config_snapshot=config_snapshot(self.settings),
                prompt_versions=prompt_versions(PROMPTS),
            )
            return run.id

    async def start_run(self, article_id: int, *, provider: str | None = None, force: bool = False) -> int:
        run_id = self.create_run(article_id, provider=provider, force=force)
        await self.runner.submit(run_id)
        return run_id

    async def resume_run(self, run_id: int, *, from_step: str | None = None, force: bool | None = None) -> None:
        """Continue a run from its last finished step (``from_step``: also redo that step and the later ones)."""
        if from_step is not None and from_step not in STEP_NAMES:
            raise InvalidInput(f"unknown step {from_step!r}", fix=f"Use one of: {', '.join(STEP_NAMES)}.")
        with self.store.session() as session:
            run = get_run(session, run_id)
            holder = lease_holder(run)
            if holder is not None and run.status in ("pending", "running"):  # nothing is reset under its feet
                raise RunHeldElsewhere(
                    f"run {run_id} is being executed by {holder}; resuming it now would run its steps twice",
                    fix=f"Wait for it to finish (`ctistudio runs show {run_id}`) or cancel it; if that process "
                    "died, resume it once its lease expires (CTISTUDIO_RUN_LEASE_SECONDS).",
                )
            if force is not None:
                run.force = force
            if from_step is not None:
                reset_steps(session, run_id, STEP_NAMES[STEP_NAMES.index(from_step) :])
            elif run.status == "gated" and run.force:
                reset_steps(session, run_id, ["rank"])  # forced now: let rank pass the gate
        await self.runner.submit(run_id)

    async def wait(self, run_id: int) -> str:
        return await self.runner.wait(run_id)

    async def aclose(self) -> None:
        """Stop the runs this process executes for the service (marked cancelled: they can be resumed)."""
        for run_id in self.runner.active():
            await self.runner.cancel(run_id)

    def events(self) -> AsyncIterator[ProgressEvent]:
        return self.runner.subscribe()

    # -- views -----------------------------------------------------------------------------------------------
    def run_view(self, run_id: int, *, with_config: bool = False) -> RunView:
        with self.store.session() as session:
            run = get_run(session, run_id)
            article = get_article(session, run.article_id)
            stored = checkpoints(session, run_id)
            steps = [_step_view(name, stored.get(name)) for name in STEP_NAMES]
            return RunView(
                id=run.id,
                article_id=run.article_id,
                article_title=article.title,
                status=run.status,
                current_step=run.current_step,
                warnings=list(run.warnings or []),
                force=run.force,
                provider=run.provider,
                model=run.model,
                error=run.error,
                worker=run.worker,
                worker_active=lease_holder(run) is not None,
                created_at=run.created_at,
                started_at=run.started_at,
                finished_at=run.finished_at,
                prompt_versions=dict(run.prompt_versions or {}),
                steps=steps,
                observables=observable_counts(session, run_id),
                rules=[rule_view(r) for r in run_rules(session, run_id)],
                config_snapshot=dict(run.config_snapshot or {}) if with_config else {},
            )

    def list_runs(self, *, status: str | None = None, limit: int = 50) -> list[RunSummary]:
        with self.store.session() as session:
            return [_summary(session, run) for run in list_runs(session, status=status, limit=limit)]


def _step_view(name: str, checkpoint: Any) -> StepView:
    if checkpoint is None:
        return StepView(name=name, status="pending")
    output = dict(checkpoint.output or {})
    output.pop("text", None)  # the filtered article: large, and in the store if needed
    return StepView(
        name=name,
        status=checkpoint.status,
        provider=checkpoint.provider,
        model=checkpoint.model,
        prompt_tokens=checkpoint.prompt_tokens,
        completion_tokens=checkpoint.completion_tokens,
        cached_tokens=(checkpoint.timings or {}).get("cached_tokens"),
        duration_ms=checkpoint.duration_ms,
        attempts=checkpoint.attempts,
        error=checkpoint.error,
        output=output,
    )


def _summary(session: Any, run: PipelineRun) -> RunSummary:
    stored = checkpoints(session, run.id)
    rank = stored.get("rank")
    score = (rank.output or {}).get("score") if rank is not None and rank.output else None
    return RunSummary(
        id=run.id,
        article_id=run.article_id,
        status=run.status,
        current_step=run.current_step,
        warnings=list(run.warnings or []),
        score=score,
        rules=len(run_rules(session, run.id)),
        worker=run.worker,
        worker_active=lease_holder(run) is not None,
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


@asynccontextmanager
async def open_service(
    settings: Settings, *, concurrency: int | None = None, novelty: NoveltyJudge | None = None
) -> AsyncIterator[PipelineService]:
    """A service over this installation's store and gateway (both closed on exit)."""
    store = Store(settings)
    gateway = Gateway(settings)
    try:
        yield PipelineService(
            settings, store, gateway, novelty=novelty or load_novelty_judge(settings), concurrency=concurrency
        )
    finally:
        await gateway.aclose()
        store.dispose()
