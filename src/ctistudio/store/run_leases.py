"""Run leases: which worker holds a pipeline run, so that a run executes in one place at a time.

With workers (``CTISTUDIO_BROKER_URL``) a run's task may be delivered twice: Redis hands a task whose worker
died to another worker, and the web app may enqueue a run that is already queued. Before executing, a
worker takes the run's lease (:func:`acquire_lease`): its name in ``pipeline_runs.worker`` and an expiry
``CTISTUDIO_RUN_LEASE_SECONDS`` ahead, renewed while it works. A second worker gets the lease only once it
has expired — its holder stopped renewing, i.e. died — or at once when the holder is a process of this host
that no longer exists (a CLI run killed with kill -9 can be resumed right away).

Every write a worker makes to the run goes through :func:`fence` in the same transaction: it renews the
lease and fails with :class:`LeaseLost` when another worker has taken the run over. So a worker that was
only *presumed* dead (paused, cut off from the database for longer than its lease) can never commit a step
the new holder also commits: each step is stored once. Both statements are single conditional ``UPDATE``s,
atomic on SQLite (one writer at a time) and on PostgreSQL (the row lock makes the second one re-check its
condition against the first one's result).
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ctistudio.store.models import PipelineRun
from ctistudio.store.types import utcnow


class LeaseLost(Exception):
    """Another worker took the run over (this one's lease had expired): stop without writing anything.

    Not a :class:`~ctistudio.errors.CtiStudioError` on purpose: the run has not failed, it goes on elsewhere.
    """


_PROCESS = re.compile(r"(\d+)@([^@\s]+)$")  # worker names end in "<pid>@<host>" (runner.py, workers/app.py)


def holder_is_dead(worker: str | None) -> bool:
    """Whether ``worker`` is a process of THIS host that no longer exists (killed, crashed): its lease is void
    at once instead of at its expiry. A worker of another host, or a name without a pid, is presumed alive."""
    match = _PROCESS.search(worker or "")
    if match is None or match.group(2) != socket.gethostname():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def acquire_lease(session: Session, run_id: int, worker: str, seconds: float, *, now: datetime | None = None) -> bool:
    """Take run ``run_id`` for ``worker`` unless another worker holds an unexpired lease on it (a holder that
    is a dead process of this host holds nothing)."""
    now = now or utcnow()
    if _take_over_from_dead_holder(session, run_id, worker, seconds, now):
        return True
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


def _take_over_from_dead_holder(session: Session, run_id: int, worker: str, seconds: float, now: datetime) -> bool:
    holder = session.scalar(select(PipelineRun.worker).where(PipelineRun.id == run_id))
    if holder is None or holder == worker or not holder_is_dead(holder):
        return False
    result = session.execute(  # compare-and-swap: only if the dead process still holds it
        update(PipelineRun)
        .where(PipelineRun.id == run_id, PipelineRun.worker == holder)
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
    """The worker holding ``run`` now (an unexpired lease of a process that is not known to be dead), else None."""
    if run.worker is None or run.lease_expires_at is None or holder_is_dead(run.worker):
        return None
    return run.worker if run.lease_expires_at > (now or utcnow()) else None
