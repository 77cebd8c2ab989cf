"""Pipeline runs, their per-step checkpoints, and the observables a run extracted.

A run is resumable because every finished step leaves a ``succeeded`` (or ``skipped``) checkpoint with its
output; the runner starts again at the first step without one. Writing a step's outputs goes through
``replace_*`` functions (delete the run's previous rows, insert the new ones), so re-running a step never
duplicates anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ctistudio.errors import NotFound
from ctistudio.store.models import RUN_STATUSES, STEP_STATUSES, Observable, PipelineRun, StepCheckpoint
from ctistudio.store.types import utcnow

FINISHED_STEP_STATUSES = ("succeeded", "skipped")


def create_run(
    session: Session,
    article_id: int,
    *,
    force: bool = False,
    provider: str | None = None,
    config_snapshot: dict[str, Any] | None = None,
    prompt_versions: dict[str, Any] | None = None,
) -> PipelineRun:
    run = PipelineRun(
        article_id=article_id,
        status="pending",
        force=force,
        provider=provider,
        config_snapshot=config_snapshot or {},
        prompt_versions=prompt_versions or {},
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> PipelineRun:
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise NotFound(f"no pipeline run with id {run_id}", fix="See `ctistudio runs list` for the ids.")
    return run


def list_runs(
    session: Session, *, status: str | None = None, article_id: int | None = None, limit: int = 50, offset: int = 0
) -> list[PipelineRun]:
    query = select(PipelineRun).order_by(PipelineRun.id.desc())
    if status:
        query = query.where(PipelineRun.status == status)
    if article_id is not None:
        query = query.where(PipelineRun.article_id == article_id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def set_run_status(
    session: Session,
    run_id: int,
    status: str,
    *,
    current_step: str | None = None,
    error: str | None = None,
    force: bool | None = None,
    warnings: list[str] | None = None,
) -> PipelineRun:
    """Move a run to ``status``; ``running`` stamps ``started_at`` once, final states stamp ``finished_at``.

    ``warnings`` (see :mod:`ctistudio.pipeline.run_warnings`) replace the run's; a run set running has none."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; allowed: {', '.join(RUN_STATUSES)}")
    run = get_run(session, run_id)
    run.status = status
    run.current_step = current_step
    run.error = error
    if force is not None:
        run.force = force
    now = utcnow()
    if warnings is not None:
        run.warnings = list(warnings)
    if status == "running":
        run.started_at = run.started_at or now
        run.finished_at = None
        run.warnings = []
    elif status in ("succeeded", "failed", "cancelled", "gated"):
        run.finished_at = now
    session.flush()
    return run


def set_run_model(session: Session, run_id: int, provider: str | None, model: str | None) -> None:
    run = get_run(session, run_id)
    run.provider = provider or run.provider
    run.model = model or run.model
    session.flush()


# -- checkpoints ------------------------------------------------------------------------------------------
def checkpoints(session: Session, run_id: int) -> dict[str, StepCheckpoint]:
    """The run's checkpoints by step name."""
    query = select(StepCheckpoint).where(StepCheckpoint.run_id == run_id).order_by(StepCheckpoint.id)
    return {cp.step: cp for cp in session.scalars(query)}


def get_checkpoint(session: Session, run_id: int, step: str) -> StepCheckpoint | None:
    return session.scalar(select(StepCheckpoint).where(StepCheckpoint.run_id == run_id, StepCheckpoint.step == step))


def finished_output(session: Session, run_id: int, step: str) -> dict[str, Any]:
    """The stored output of a step that must have finished (the input of a later step)."""
    checkpoint = get_checkpoint(session, run_id, step)
    if checkpoint is None or checkpoint.status not in FINISHED_STEP_STATUSES:
        raise NotFound(
            f"run {run_id} has no finished '{step}' step",
            fix=f"Resume the run (`ctistudio runs resume {run_id}`) so that '{step}' runs first.",
        )
    return dict(checkpoint.output or {})


def start_step(session: Session, run_id: int, step: str) -> StepCheckpoint:
    """Mark ``step`` running (creating its checkpoint row, or resetting a failed/interrupted one)."""
    checkpoint = get_checkpoint(session, run_id, step)
    if checkpoint is None:
        checkpoint = StepCheckpoint(run_id=run_id, step=step)
        session.add(checkpoint)
    checkpoint.status = "running"
    checkpoint.error = None
    checkpoint.output = None
    checkpoint.started_at = utcnow()
    checkpoint.finished_at = None
    checkpoint.attempts = (checkpoint.attempts or 0) + 1
    session.flush()
    return checkpoint


def finish_step(
    session: Session,
    run_id: int,
    step: str,
    *,
    status: str = "succeeded",
    output: dict[str, Any],
    provider: str | None = None,
    model: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    duration_ms: float | None = None,
    timings: dict[str, Any] | None = None,
    error: str | None = None,
) -> StepCheckpoint:
    """Store a step's outcome (``succeeded``, ``skipped`` or ``failed``) with its accounting."""
    if status not in STEP_STATUSES:
        raise ValueError(f"unknown step status {status!r}; allowed: {', '.join(STEP_STATUSES)}")
    checkpoint = get_checkpoint(session, run_id, step) or start_step(session, run_id, step)
    checkpoint.status = status
    checkpoint.output = output
    checkpoint.provider = provider
    checkpoint.model = model
    checkpoint.prompt_tokens = prompt_tokens
    checkpoint.completion_tokens = completion_tokens
    checkpoint.duration_ms = duration_ms
    checkpoint.timings = timings or {}
    checkpoint.error = error
    checkpoint.finished_at = utcnow()
    session.flush()
    return checkpoint


def reset_steps(session: Session, run_id: int, steps: Iterable[str]) -> int:
    """Forget the checkpoints of ``steps`` so that they run again; returns how many were removed."""
    names = list(steps)
    result = session.execute(
        delete(StepCheckpoint).where(StepCheckpoint.run_id == run_id, StepCheckpoint.step.in_(names))
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def interrupted_runs(session: Session, *, older_than: datetime | None = None) -> list[PipelineRun]:
    """Runs left ``running`` or ``pending`` (their process died or never started them)."""
    query = select(PipelineRun).where(PipelineRun.status.in_(("running", "pending")))
    if older_than is not None:
        query = query.where(PipelineRun.updated_at < older_than)
    return list(session.scalars(query.order_by(PipelineRun.id)))


# -- observables ----------------------------------------------------------------------------------------------
def replace_observables(session: Session, run_id: int, article_id: int, items: Iterable[dict[str, Any]]) -> int:
    """Replace the run's observables with ``items`` (dicts with kind, value, source_evidence, …)."""
    session.execute(delete(Observable).where(Observable.run_id == run_id))
    count = 0
    for item in items:
        session.add(
            Observable(
                run_id=run_id,
                article_id=article_id,
                kind=item["kind"],
                value=item["value"],
                source_evidence=item.get("source_evidence"),
                justification=item.get("justification"),
                confidence=item.get("confidence"),
                extractor=item.get("extractor"),
                extra=item.get("extra") or {},
            )
        )
        count += 1
    session.flush()
    return count


def run_observables(session: Session, run_id: int) -> list[Observable]:
    query = select(Observable).where(Observable.run_id == run_id).order_by(Observable.id)
    return list(session.scalars(query))


def observable_counts(session: Session, run_id: int) -> dict[str, int]:
    query = select(Observable.kind, func.count()).where(Observable.run_id == run_id).group_by(Observable.kind)
    return {kind: int(count) for kind, count in session.execute(query)}
