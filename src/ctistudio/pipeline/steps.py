"""The pipeline's steps, each a plain function of (run id, stored inputs) → stored outputs.

A step reads what it needs from the store (the article, earlier checkpoints, the run's observables or
rules), does its work, and returns a :class:`StepResult`: the checkpoint output plus a ``persist`` callback
that writes its table rows. The runner commits both in ONE transaction, so a killed process leaves either
a finished step or none, and running a step again replaces its rows instead of adding to them. Nothing here
depends on being in the same process as the caller: a distributed worker can call the same functions with
its own :class:`PipelineDeps`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ctistudio.config import Settings
from ctistudio.errors import CtiStudioError
from ctistudio.ingest.platforms import detect_platforms
from ctistudio.llm import Gateway
from ctistudio.pipeline.extract import extract_observables
from ctistudio.pipeline.junk import LinearChunkClassifier, filter_junk
from ctistudio.pipeline.models import Observable
from ctistudio.pipeline.novelty import NoveltyJudge
from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.rank import rank_article
from ctistudio.pipeline.sigma_gen import RuleContext, generate_rules
from ctistudio.pipeline.usage import StepUsage
from ctistudio.store import Store
from ctistudio.store.articles import get_article
from ctistudio.store.rules import NewRule, run_rules, set_rule_novelty, store_run_rules
from ctistudio.store.runs import finished_output, get_run, replace_observables, run_observables

log = logging.getLogger(__name__)


@dataclass
class PipelineDeps:
    """What steps need from the outside world. Built once per process (or per worker)."""

    settings: Settings
    store: Store
    gateway: Gateway
    novelty: NoveltyJudge | None = None
    junk_classifier: LinearChunkClassifier | None = None


@dataclass
class StepResult:
    """A step's checkpoint output, accounting, and the rows it writes (in the checkpoint's transaction)."""

    output: dict[str, Any]
    usage: StepUsage = field(default_factory=StepUsage)
    status: str = "succeeded"  # or "skipped"
    persist: Callable[[Session], None] | None = None
    gated: bool = False  # the run stops here (rank below the threshold, not forced)


@dataclass
class RunInputs:
    run_id: int
    article_id: int
    title: str
    url: str | None
    content: str
    force: bool
    provider: str | None
    created: str  # YYYY-MM-DD
    platforms: list[str]
    platform_evidence: dict[str, Any]
    hunt_score: int


def load_inputs(deps: PipelineDeps, run_id: int) -> RunInputs:
    with deps.store.session() as session:
        run = get_run(session, run_id)
        article = get_article(session, run.article_id)
        return RunInputs(
            run_id=run.id,
            article_id=article.id,
            title=article.title,
            url=article.url,
            content=article.content,
            force=run.force,
            provider=run.provider,
            created=run.created_at.date().isoformat(),
            platforms=list(article.platforms or []),
            platform_evidence=dict(article.platform_evidence or {}),
            hunt_score=article.hunt_score,
        )


def _output_of(deps: PipelineDeps, run_id: int, step: str) -> dict[str, Any]:
    with deps.store.session() as session:
        return finished_output(session, run_id, step)


# -- 1. prepare: junk filter and platform detection ------------------------------------------------------------
async def step_prepare(run_id: int, deps: PipelineDeps) -> StepResult:
    inputs = load_inputs(deps, run_id)
    junk = filter_junk(inputs.content, deps.junk_classifier)
    platforms, evidence = inputs.platforms, inputs.platform_evidence
    if not platforms and not evidence:  # an article stored without ingestion's scores
        detection = detect_platforms(inputs.content, inputs.title)
        platforms, evidence = detection.platforms, detection.evidence_json()
    return StepResult(
        output={
            "text": junk.text,
            "chars": len(inputs.content),
            "kept_chars": len(junk.text),
            "removed": [vars(r) for r in junk.removed],
            # platforms and the hunt score are computed (deterministically, with evidence) at ingestion
            "platforms": platforms,
            "platform_evidence": evidence,
            "hunt_score": inputs.hunt_score,
            "pre_extract": pre_extract(junk.text).counts(),
        }
    )


# -- 2. rank --------------------------------------------------------------------------------------------------------
async def step_rank(run_id: int, deps: PipelineDeps) -> StepResult:
    inputs = load_inputs(deps, run_id)
    prepared = _output_of(deps, run_id, "prepare")
    # an unusable model answer ranks by the article's hunt score (origin "hunt_score"); no server still fails
    outcome = await rank_article(
        deps.gateway,
        prepared["text"],
        title=inputs.title,
        original=inputs.content,
        provider=inputs.provider,
        hunt_score=inputs.hunt_score,
    )
    threshold = deps.settings.rank_threshold
    passed = outcome.score >= threshold
    output = {**outcome.model_dump(exclude={"usage"}), "threshold": threshold, "passed": passed, "forced": False}
    if not passed and inputs.force:
        output["forced"] = True
    return StepResult(output=output, usage=outcome.usage, gated=not passed and not inputs.force)


# -- 3. extract -------------------------------------------------------------------------------------------------------
async def step_extract(run_id: int, deps: PipelineDeps) -> StepResult:
    inputs = load_inputs(deps, run_id)
    prepared = _output_of(deps, run_id, "prepare")
    outcome = await extract_observables(
        deps.gateway, prepared["text"], original=inputs.content, provider=inputs.provider
    )
    rows = [
        {
            "kind": o.kind,
            "value": o.value,
            "source_evidence": o.source_evidence,
            "justification": o.justification,
            "confidence": o.confidence,
            "extractor": o.origin,
            "extra": o.attributes,
        }
        for o in outcome.observables
    ]
    counts: dict[str, int] = {}
    for o in outcome.observables:
        counts[o.kind] = counts.get(o.kind, 0) + 1

    def persist(session: Session) -> None:
        replace_observables(session, run_id, inputs.article_id, rows)

    return StepResult(
        output={
            "counts": counts,
            # model: selected or found by the model; pattern: the pre-extractor's floor alone
            "by_origin": outcome.by_origin(),
            "modes": {r.kind: r.mode for r in outcome.agents},
            "agents": [r.model_dump() for r in outcome.agents],
            "dropped": len(outcome.dropped),
            "dropped_by_reason": outcome.dropped_by_reason(),
            "dropped_items": [d.model_dump() for d in outcome.dropped[:100]],
        },
        usage=outcome.usage,
        persist=persist,
    )


def _stored_observables(deps: PipelineDeps, run_id: int) -> list[Observable]:
    with deps.store.session() as session:
        return [
            Observable(
                kind=o.kind,
                value=o.value,
                source_evidence=o.source_evidence or "",
                justification=o.justification or "",
                confidence=o.confidence if o.confidence is not None else 0.5,
                origin="pattern" if o.extractor == "pattern" else "model",
                attributes={k: str(v) for k, v in (o.extra or {}).items()},
            )
            for o in run_observables(session, run_id)
        ]


# -- 4. sigma: generate, validate, repair ---------------------------------------------------------------------------
async def step_sigma(run_id: int, deps: PipelineDeps) -> StepResult:
    inputs = load_inputs(deps, run_id)
    observables = _stored_observables(deps, run_id)
    reference = inputs.url or f"ctistudio article {inputs.article_id}: {inputs.title}"
    context = RuleContext(
        id_seed=f"run-{run_id}",
        title=inputs.title,
        reference=reference,
        date=inputs.created,
        provider=inputs.provider,
        article=inputs.content,
    )
    rules, notes, usage = await generate_rules(deps.gateway, observables, context)
    new_rules = [
        NewRule(
            rule_uuid=r.rule_id,
            title=r.title,
            yaml=r.yaml,
            logsource=r.logsource,
            level=r.level,
            valid=r.valid,
            errors=[i.model_dump() for i in r.issues if i.severity == "error"],
            extra={"group": r.group, "origin": r.origin},
        )
        for r in rules
    ]

    def persist(session: Session) -> None:
        store_run_rules(session, run_id, inputs.article_id, new_rules)

    return StepResult(
        output={
            "rules": [
                {
                    "rule_uuid": r.rule_id,
                    "title": r.title,
                    "group": r.group,
                    "valid": r.valid,
                    "origin": r.origin,
                }
                for r in rules
            ],
            "valid": sum(r.valid for r in rules),
            "invalid": sum(not r.valid for r in rules),
            "by_origin": {o: sum(r.origin == o for r in rules) for o in ("model", "floor")},
            # why a group's rules came from the floor (no usable model answer …); the run shows these as warnings
            "group_errors": notes,
        },
        usage=usage,
        persist=persist,
    )


# -- 5. novelty ------------------------------------------------------------------------------------------------------
async def step_novelty(run_id: int, deps: PipelineDeps) -> StepResult:
    """A verdict per valid rule, each on its own: a duplicate never holds back the rest of the batch."""
    with deps.store.session() as session:
        rules = [(r.id, r.yaml) for r in run_rules(session, run_id) if r.validation_status == "valid"]
    if deps.novelty is None:
        return StepResult(
            status="skipped",
            output={
                "reason": "no SigmaHQ similarity index: rules are queued unchecked",
                "fix": "Build one with `ctistudio sigma index --rules DIR` (or --git URL), then "
                f"`ctistudio runs resume {run_id} --from novelty`.",
                "queued": len(rules),
            },
        )
    verdicts: dict[int, tuple[str | None, list[dict[str, Any]]]] = {}
    failures: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for rule_id, text in rules:
        try:
            result = deps.novelty.judge(text)
        except CtiStudioError as exc:  # one unreadable rule must not stop the others: recorded, not raised
            failures[str(rule_id)] = f"{type(exc).__name__}: {exc}"
            continue
        verdicts[rule_id] = (result.verdict, [m.model_dump() for m in result.top])
        reasons[str(rule_id)] = result.reason

    def persist(session: Session) -> None:
        for rule_id, (verdict, similar) in verdicts.items():
            set_rule_novelty(session, rule_id, verdict, similar)

    summary: dict[str, int] = {}
    for verdict, _ in verdicts.values():
        summary[str(verdict)] = summary.get(str(verdict), 0) + 1
    return StepResult(
        output={
            "verdicts": {str(k): v[0] for k, v in verdicts.items()},
            "reasons": reasons,
            "summary": summary,
            "queued": sum(1 for v, _ in verdicts.values() if v in ("novel", "similar")),
            "failures": failures,
            "index": deps.novelty.describe(),
        },
        persist=persist,
    )


StepFunction = Callable[[int, PipelineDeps], Awaitable[StepResult]]
STEPS: dict[str, StepFunction] = {
    "prepare": step_prepare,
    "rank": step_rank,
    "extract": step_extract,
    "sigma": step_sigma,
    "novelty": step_novelty,
}
STEP_NAMES: tuple[str, ...] = tuple(STEPS)
