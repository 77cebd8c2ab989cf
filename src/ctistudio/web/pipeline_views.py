"""What the pipeline produced for an article, and the pipeline service as the web app holds it.

Runs, steps and rules are the pipeline service's own views (``ctistudio.pipeline.service.RunView``,
``ctistudio.pipeline.review.RuleView``); this module adds the rank and observables an article page shows.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ctistudio.pipeline.service import PipelineService
from ctistudio.web.context import AppContext, ServiceMissing


class RankView(BaseModel):
    score: int
    band: str
    reasons: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)


class ObservableView(BaseModel):
    id: int
    kind: str
    value: str
    source_evidence: str | None = None
    justification: str | None = None
    confidence: float | None = None
    extractor: str | None = None


class ArticlePipeline(BaseModel):
    available: bool
    reason: str = ""
    run: Any = None  # ctistudio.pipeline.service.RunView of the latest run
    rank: RankView | None = None
    observables: list[ObservableView] = Field(default_factory=list)

    def evidence_quotes(self) -> list[tuple[str, str]]:
        quotes = [(o.source_evidence, f"{o.kind}: {o.value}") for o in self.observables if o.source_evidence]
        if self.rank:
            quotes += [(q, "rank evidence") for q in self.rank.evidence]
        return quotes


def pipeline_service(ctx: AppContext) -> PipelineService:
    """The pipeline service for the current settings (built by the context; ServiceMissing without a store)."""
    return ctx.pipeline()


def rank_view(output: dict[str, Any] | None) -> RankView | None:
    """The rank step's checkpoint as a view (None when the step has not produced a score)."""
    if not output or not isinstance(output.get("score"), int):
        return None
    return RankView(
        score=output["score"],
        band=str(output.get("band", "")),
        reasons=[str(r) for r in output.get("reasons") or []],
        evidence=[str(e) for e in output.get("evidence") or []],
    )


def article_pipeline(ctx: AppContext, article_id: int) -> ArticlePipeline:
    """Latest run with its steps and rules, the rank and the observables of an article."""
    try:
        service = ctx.pipeline()
        from ctistudio.store import runs as runs_repo
    except (ServiceMissing, ImportError) as exc:
        return ArticlePipeline(available=False, reason=getattr(exc, "reason", str(exc)))
    with ctx.require_store().session() as session:
        latest = runs_repo.list_runs(session, article_id=article_id, limit=1)
        if not latest:
            return ArticlePipeline(available=True)
        run_id = latest[0].id
        observables = [
            ObservableView(**{name: getattr(o, name) for name in ObservableView.model_fields})
            for o in runs_repo.run_observables(session, run_id)
        ]
    run = service.run_view(run_id)
    rank = next((step for step in run.steps if step.name == "rank"), None)
    return ArticlePipeline(
        available=True, run=run, rank=rank_view(rank.output if rank else None), observables=observables
    )
