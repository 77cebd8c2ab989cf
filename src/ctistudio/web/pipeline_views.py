"""What the pipeline produced for an article (latest run, rank, observables, rules), as typed views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.web.context import AppContext


class StepView(BaseModel):
    step: str
    status: str
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None
    attempts: int = 0
    error: str | None = None
    output: dict[str, Any] | None = None


class RunView(BaseModel):
    id: int
    article_id: int
    status: str
    current_step: str | None = None
    provider: str | None = None
    model: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[StepView] = Field(default_factory=list)


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


class RuleView(BaseModel):
    id: int
    title: str
    yaml: str
    level: str | None = None
    validation_status: str
    validation_errors: list[Any] = Field(default_factory=list)
    repair_rounds: int = 0
    similarity: list[Any] = Field(default_factory=list)
    verdict: str | None = None
    review_state: str
    article_id: int | None = None
    run_id: int | None = None


class ArticlePipeline(BaseModel):
    available: bool
    reason: str = ""
    latest_run: RunView | None = None
    rank: RankView | None = None
    observables: list[ObservableView] = Field(default_factory=list)
    rules: list[RuleView] = Field(default_factory=list)

    def evidence_quotes(self) -> list[tuple[str, str]]:
        quotes = [(o.source_evidence, f"{o.kind}: {o.value}") for o in self.observables if o.source_evidence]
        if self.rank:
            quotes += [(q, "rank evidence") for q in self.rank.evidence]
        return quotes


def article_pipeline(ctx: AppContext, article_id: int) -> ArticlePipeline:
    """Latest run, rank, observables and rules of an article (``available=False`` without the runner)."""
    if not ctx.services.available("pipeline") or not hasattr(ctx.services.modules["pipeline"], "start_run"):
        return ArticlePipeline(available=False, reason="the pipeline runner (ctistudio.pipeline) is not installed yet")
    return ArticlePipeline(available=False, reason="pipeline results are not readable yet")
