"""Run the extract and sigma steps over an eval set and score them (see :mod:`ctistudio.pipeline.evals`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from ctistudio.llm import Gateway
from ctistudio.pipeline.evals import (
    PRF,
    ArticleResult,
    EvalArticle,
    EvalReport,
    atom_differences,
    kind_of_set,
    load_cases,
    score_items,
    score_sigma,
)
from ctistudio.pipeline.extract import extract_observables
from ctistudio.pipeline.junk import filter_junk
from ctistudio.pipeline.sigma_gen import RuleContext, generate_rules
from ctistudio.pipeline.usage import StepUsage
from ctistudio.sigma.rule_yaml import load_documents

Progress = Callable[[str], None]


async def eval_extract(
    set_dir: Path,
    gateway: Gateway | None,
    *,
    agent: str | None = None,
    provider: str | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Score one sub-agent (``gateway=None``: the deterministic pre-extractor alone) on a labelled set."""
    kind = kind_of_set(set_dir, agent)
    cases = load_cases(set_dir)
    usage = StepUsage()
    started = time.perf_counter()
    items = {"floor": 0, "confirmed": 0, "new": 0, "dropped": 0}  # summed over the agents' reports

    async def one(article: EvalArticle, expected: list[str]) -> ArticleResult:
        filtered = filter_junk(article.content).text
        outcome = await extract_observables(
            gateway, filtered, original=article.content, provider=provider, kinds=(kind,)
        )
        usage.merge(outcome.usage)
        for report in outcome.agents:
            for key in items:
                items[key] += getattr(report, key)
        predicted = [o.value for o in outcome.observables if o.kind == kind]
        counts, missed, extra = score_items(predicted, expected)
        notes = [f"{r.kind}: {r.mode}" + (f" ({r.error})" if r.error else "") for r in outcome.agents]
        if outcome.dropped:
            notes.append(f"hallucination guard dropped {len(outcome.dropped)}")
        if progress:
            progress(article.url)
        return ArticleResult(
            url=article.url, title=article.title, scores={"items": counts}, missed=missed, extra=extra, notes=notes
        )

    results = await asyncio.gather(*(one(a, list(label.get("expected_items") or [])) for a, label in cases))
    total = PRF()
    for result in results:
        total.add(result.scores["items"])
    modes = {note.split(": ", 1)[1].split(" ")[0] for r in results for note in r.notes if note.startswith(kind)}
    return EvalReport(
        kind="extract",
        set=Path(set_dir).name,
        set_path=str(set_dir),
        target=kind,
        mode="pattern" if gateway is None else ("model" if modes == {"model"} else "+".join(sorted(modes))),
        models=usage.models,
        totals={"items": total},
        articles=list(results),
        seconds=round(time.perf_counter() - started, 2),
        extra={
            "llm_calls": usage.calls,
            "failed_calls": usage.failed_calls,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            # floor: the pre-extractor's items; confirmed: of those, selected by the model; new: the model's own
            "items": items,
        },
    )


async def eval_sigma(
    set_dir: Path,
    gateway: Gateway,
    *,
    provider: str | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Extract and generate Sigma rules for every article of a labelled set; score log sources and atoms."""
    cases = load_cases(set_dir)
    usage = StepUsage()
    started = time.perf_counter()
    today = date.today().isoformat()
    counts = {"generated_valid": 0, "generated_invalid": 0, "generated_floor": 0, "expected": 0}

    async def one(number: int, article: EvalArticle, expected: list[dict[str, Any]]) -> ArticleResult:
        filtered = filter_junk(article.content).text
        outcome = await extract_observables(gateway, filtered, original=article.content, provider=provider)
        usage.merge(outcome.usage)
        context = RuleContext(
            id_seed=f"eval-{number}",
            title=article.title,
            reference=article.url,
            date=today,
            provider=provider,
            article=article.content,
        )
        rules, errors, rule_usage = await generate_rules(gateway, outcome.observables, context)
        usage.merge(rule_usage)
        valid = [_parsed(r.yaml) for r in rules if r.valid]
        counts["generated_valid"] += len(valid)
        counts["generated_invalid"] += sum(not r.valid for r in rules)
        counts["expected"] += len(expected)
        floor = sum(r.origin == "floor" for r in rules)
        counts["generated_floor"] += floor
        if progress:
            progress(article.url)
        notes = [f"{len(valid)} valid and {sum(not r.valid for r in rules)} invalid rules ({floor} floor)", *errors]
        missed, extra = atom_differences(valid, expected)
        return ArticleResult(
            url=article.url,
            title=article.title,
            scores=score_sigma(valid, expected),
            missed=missed,
            extra=extra,
            notes=notes,
        )

    # One article at a time: its agents and log-source groups already fill the server's slots, and a local
    # server's prefix cache then keeps the article for all of its calls. Articles interleaved on the same
    # slots would make every call evaluate its (long) article again.
    results = [await one(n, a, list(label.get("expected_rules") or [])) for n, (a, label) in enumerate(cases)]
    totals = {"logsource": PRF(), "atoms": PRF()}
    for result in results:
        for name, value in result.scores.items():
            totals[name].add(value)
    return EvalReport(
        kind="sigma",
        set=Path(set_dir).name,
        set_path=str(set_dir),
        target="sigma",
        mode="model",
        models=usage.models,
        totals=totals,
        articles=list(results),
        seconds=round(time.perf_counter() - started, 2),
        extra={**counts, "llm_calls": usage.calls, "failed_calls": usage.failed_calls},
    )


def _parsed(text: str) -> dict[str, Any]:
    documents = [d for d in load_documents(text) if d is not None]
    return dict(documents[0])
