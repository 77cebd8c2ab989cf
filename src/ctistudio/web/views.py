"""View data for the pages, gathered from the services. A service that is not there is reported, not faked."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ctistudio.web.context import AppContext


class Unavailable(BaseModel):
    what: str
    reason: str


class DashboardSummary(BaseModel):
    counts: dict[str, int] = {}
    recent_runs: list[dict[str, Any]] = []
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
    for name in ("store", "ingest", "pipeline", "sigma", "rag", "bench"):
        if not ctx.services.available(name):
            summary.missing.append(Unavailable(what=name, reason=ctx.services.missing[name]))
    return summary


def queue_counts(ctx: AppContext) -> dict[str, Any]:
    return {"available": False, "detail": "the review queue needs ctistudio.pipeline"}
