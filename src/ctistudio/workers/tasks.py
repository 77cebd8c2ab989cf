"""The Celery tasks. Each is idempotent, so a task delivered twice (its worker died before acknowledging
it) does no harm: see :mod:`ctistudio.broker` and :mod:`ctistudio.store.run_leases`."""

from __future__ import annotations

import contextlib
from typing import Any

import redis

from ctistudio.broker import INDEX_ARTICLES, POLL_SOURCES, REFRESH_SIGMA_INDEX, RUN_PIPELINE
from ctistudio.workers import jobs
from ctistudio.workers.app import app, context
from ctistudio.workers.context import RunBusy

POLL_LOCK = "ctistudio:poll-sources"
POLL_LOCK_SECONDS = 1800  # a pass that takes longer (or whose worker died) no longer blocks the next ones


@app.task(name=RUN_PIPELINE, bind=True, max_retries=None)
def run_pipeline(self: Any, run_id: int) -> str:
    """Execute what is left of a pipeline run; when another live worker holds it, look again later."""
    ctx = context()
    try:
        return ctx.run_pipeline(run_id, worker=self.request.hostname or "worker")
    except RunBusy as busy:
        settings = ctx.settings()
        # sooner than the lease can expire, and before Redis would hand this retry to another worker
        countdown = max(0.5, min(settings.run_lease_seconds / 2, settings.broker_visibility_timeout / 2))
        raise self.retry(countdown=countdown, exc=busy) from None


@app.task(name=POLL_SOURCES)
def poll_sources() -> dict[str, Any]:
    """One pass over the due sources — one at a time across all workers (two overlapping passes would fetch
    the same due sources twice), so a pass that finds another one running is skipped."""
    ctx = context()
    deps = ctx.deps()
    lock = redis.Redis.from_url(str(deps.settings.broker_url)).lock(POLL_LOCK, timeout=POLL_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return {"skipped": "another pass over the sources is running"}
    try:
        service = ctx.pipeline_service()
        return ctx.run_async(jobs.poll_sources(deps.settings, ctx.store, deps.gateway, service.start_run))
    finally:
        with contextlib.suppress(redis.exceptions.LockError):  # held past its timeout: released already
            lock.release()


@app.task(name=INDEX_ARTICLES)
def index_articles(article_ids: list[int]) -> str | None:
    ctx = context()
    deps = ctx.deps()
    return ctx.run_async(jobs.index_articles(deps.settings, ctx.store, deps.gateway, article_ids))


@app.task(name=REFRESH_SIGMA_INDEX)
def refresh_sigma_index() -> dict[str, Any]:
    ctx = context()
    deps = ctx.deps()
    return ctx.run_async(jobs.refresh_sigma(deps.settings, deps.gateway))
