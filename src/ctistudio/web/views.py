"""View data for the pages, gathered from the services. A service that is not there is reported, not faked."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ctistudio.web.context import NO_STORE, AppContext, ServiceMissing


class Unavailable(BaseModel):
    what: str
    reason: str


class DashboardSummary(BaseModel):
    counts: dict[str, int] = {}
    recent_runs: list[Any] = []
    missing: list[Unavailable] = []


def dashboard(ctx: AppContext) -> DashboardSummary:
    summary = DashboardSummary()
    if ctx.store is not None:
        from ctistudio.store import articles, sources

        with ctx.store.session() as session:
            by_status = articles.article_counts_by_status(session)
            summary.counts["articles"] = sum(by_status.values())
            summary.counts["duplicates"] = by_status.get("duplicate", 0)
            all_sources = sources.list_sources(session)
            summary.counts["sources"] = len(all_sources)
            summary.counts["failing sources"] = sum(1 for s in all_sources if s.consecutive_failures)
        queue = queue_counts(ctx)
        if queue.pop("available", False):
            summary.counts.update({f"rules {k}": v for k, v in queue.items() if k in ("queued", "approved")})
    summary.recent_runs = recent_runs(ctx)
    if ctx.store is None:
        summary.missing.append(Unavailable(what="store", reason=NO_STORE))
    return summary


def queue_counts(ctx: AppContext) -> dict[str, Any]:
    """Review-queue counts for /health and the dashboard (with ``available`` and the reason when not)."""
    try:
        from ctistudio.store.rules import rule_counts
    except ImportError as exc:
        return {"available": False, "detail": f"no review queue in this build ({exc})"}
    with ctx.require_store().session() as session:
        return {"available": True, **rule_counts(session)}


def recent_runs(ctx: AppContext, limit: int = 8) -> list[Any]:
    try:
        return ctx.pipeline().list_runs(limit=limit)
    except ServiceMissing:
        return []
