"""Run leases: which worker holds a pipeline run, so that a run executes in one place at a time.

With workers (``CTISTUDIO_BROKER_URL``) a run's task may be delivered twice: Redis hands a task whose worker
died to another worker, and the web app may enqueue a run that is already queued. Before executing, a
worker takes the run's lease (:func:`acquire_lease`): its name in ``pipeline_runs.worker`` and an expiry
``CTISTUDIO_RUN_LEASE_SECONDS`` ahead, renewed while it works. A second worker gets the lease only once it
has expired — its holder stopped renewing, i.e. died.

Every write a worker makes to the run goes through :func:`fence` in the same transaction: it renews the
lease and fails with :class:`LeaseLost` when another worker has taken the run over. So a worker that was
only *presumed* dead (paused, cut off from the database for longer than its lease) can never commit a step
the new holder also commits: each step is stored once. Both statements are single conditional ``UPDATE``s,
atomic on SQLite (one writer at a time) and on PostgreSQL (the row lock makes the second one re-check its
condition against the first one's result).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ctistudio.store.models import PipelineRun
from ctistudio.store.types import utcnow


class LeaseLost(Exception):
    """Another worker took the run over (this one's lease had expired): stop without writing anything.

    Not a :class:`~ctistudio.errors.CtiStudioError` on purpose: the run has not failed, it goes on elsewhere.
    """


def acquire_lease(session: Session, run_id: int, worker: str, seconds: float, *, now: datetime | None = None) -> bool:
    """Take run ``run_id`` for ``worker`` unless another worker holds an unexpired lease on it."""
    now = now or utcnow()
    result = session.execute(
        update(PipelineRun)
        .where(
            PipelineRun.id == run_id,
            or_(
                PipelineRun.worker.is_(None),
                PipelineRun.worker == worker,
                PipelineRun.lease_expires_at.is_(None),
                PipelineRun.lease_expires_at < now,
            ),
        )
        .values(worker=worker, lease_expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_lease(session: Session, run_id: int, worker: str, seconds: float) -> bool:
    """Push ``worker``'s lease on the run ``seconds`` ahead; False when another worker holds the run now, or
    when the run was cancelled (a cancelled run's worker stops at its next write)."""
    result = session.execute(
        update(PipelineRun)
        .where(PipelineRun.id == run_id, PipelineRun.worker == worker, PipelineRun.status != "cancelled")
        .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fence(session: Session, run_id: int, worker: str, seconds: float) -> None:
    """Guard a write of ``worker`` to the run (call it inside the write's transaction): renew or stop."""
    if not renew_lease(session, run_id, worker, seconds):
        raise LeaseLost(f"run {run_id} was cancelled or taken over by another worker; {worker} stops writing")


def release_lease(session: Session, run_id: int, worker: str) -> None:
    """Give the run up (it finished, or this worker stops): the worker's name stays as who ran it last."""
    session.execute(
        update(PipelineRun)
        .where(PipelineRun.id == run_id, PipelineRun.worker == worker)
        .values(lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def lease_holder(run: PipelineRun, *, now: datetime | None = None) -> str | None:
    """The worker holding ``run`` now (an unexpired lease), else None."""
    if run.worker is None or run.lease_expires_at is None:
        return None
    return run.worker if run.lease_expires_at > (now or utcnow()) else None
