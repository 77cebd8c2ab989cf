"""Running a benchmark: plan the targets, measure each one task by task, assemble the report.

    report = await run_benchmark(BenchOptions(tasks=["rank", "extract"], repeat=3), settings=settings)
    files = write_report(report, Path("logs"))

Per target (provider × model), in order: its first call (the cold start: loading the model, JIT loading
in LM Studio, an empty prompt cache), then for each task one first call and ``repeat`` warm calls, then —
when asked — ``concurrency`` calls at once and ``repeat`` interleaved gateway/raw pairs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ctistudio.bench import memory
from ctistudio.bench.environment import capture_environment
from ctistudio.bench.errors import BenchError
from ctistudio.bench.measure import CallSpec, compare_raw, measure_call, measure_concurrency
from ctistudio.bench.models import (
    TASK_NAMES,
    BenchParams,
    BenchReport,
    BenchTaskName,
    Sample,
    TargetResult,
    TaskResult,
    Unavailable,
)
from ctistudio.bench.stats import (
    distribution,
    end_to_end_tps,
    mean,
    quality_means,
    success_rate,
    validity_rate,
)
from ctistudio.bench.targets import (
    Target,
    check_available,
    choose_providers,
    is_in_process,
    parse_models,
    plan_targets,
)
from ctistudio.bench.tasks import TASKS, BenchArticle
from ctistudio.config import Settings, load_settings
from ctistudio.errors import ConfigurationError, CtiStudioError
from ctistudio.llm import Gateway
from ctistudio.llm.providers import spec_for

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (what is being measured, calls just finished)


@dataclass
class BenchOptions:
    providers: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    tasks: list[BenchTaskName] = field(default_factory=lambda: list(TASK_NAMES))
    quick: bool = False
    repeat: int | None = None  # warm calls per task (default 3, --quick 1)
    concurrency: int = 1  # >1: that many calls at once per task, after the sequential ones
    compare_raw: bool = False
    article: Path | None = None  # default: the packaged demo article

    def warm_calls(self) -> int:
        return self.repeat if self.repeat is not None else (1 if self.quick else 3)

    def calls_per_task(self) -> int:
        """Calls one task makes: first + warm + concurrent + 2 per raw pair."""
        warm = self.warm_calls()
        return 1 + warm + (self.concurrency if self.concurrency > 1 else 0) + (2 * warm if self.compare_raw else 0)

    def validate(self) -> None:
        unknown = [t for t in self.tasks if t not in TASK_NAMES]
        if unknown or not self.tasks:
            raise ConfigurationError(
                f"unknown task(s): {', '.join(unknown) or '(none given)'}",
                fix=f"Use --tasks with a comma-separated subset of: {','.join(TASK_NAMES)}.",
            )
        if self.warm_calls() < 1:
            raise ConfigurationError("--repeat must be at least 1", fix="Use --repeat 1 or more.")
        if self.concurrency < 1:
            raise ConfigurationError("--concurrency must be at least 1", fix="Use --concurrency 1 (off) or more.")


@dataclass
class BenchPlan:
    """What a run will measure (available targets) and what it cannot (with reasons)."""

    targets: list[Target]
    unavailable: list[Unavailable]
    options: BenchOptions
    article: BenchArticle

    def total_calls(self) -> int:
        return sum(len(t.tasks) for t in self.targets) * self.options.calls_per_task()


async def plan_benchmark(options: BenchOptions, settings: Settings) -> BenchPlan:
    """Decide the targets and check each one's availability (no model call is made here)."""
    options.validate()
    article = BenchArticle.from_file(options.article) if options.article else BenchArticle.demo()
    providers, skipped = choose_providers(settings, options.providers)
    async with Gateway(settings) as gateway:
        targets, unavailable = plan_targets(gateway, providers, parse_models(options.models, providers), options.tasks)
    unavailable = skipped + unavailable
    available = []
    for target in targets:
        reason = await check_available(target)
        if reason is None:
            available.append(target)
            continue
        unavailable.append(reason)
        if target.gateway is not None:
            await target.gateway.aclose()
    return BenchPlan(available, unavailable, options, article)


async def run_benchmark(
    options: BenchOptions, *, settings: Settings | None = None, progress: Progress | None = None
) -> BenchReport:
    """Measure every available target; unavailable ones are in ``report.unavailable`` with their reason."""
    settings = settings or load_settings()
    plan = await plan_benchmark(options, settings)
    return await execute_plan(plan, settings, progress=progress)


async def execute_plan(plan: BenchPlan, settings: Settings, *, progress: Progress | None = None) -> BenchReport:
    started_at = dt.datetime.now().astimezone()
    clock = time.perf_counter()
    results = []
    for target in plan.targets:
        results.append(await measure_target(target, plan, progress or _no_progress))
    finished_at = dt.datetime.now().astimezone()
    options = plan.options
    return BenchReport(
        run_id=started_at.strftime("%Y%m%d_%H%M%S"),
        started_at=started_at.isoformat(timespec="seconds"),
        finished_at=finished_at.isoformat(timespec="seconds"),
        duration_s=time.perf_counter() - clock,
        params=BenchParams(
            providers=options.providers,
            models=options.models,
            tasks=options.tasks,
            quick=options.quick,
            repeat=options.warm_calls(),
            concurrency=options.concurrency,
            compare_raw=options.compare_raw,
            max_tokens={name: TASKS[name].max_tokens(plan.article) for name in options.tasks},
            article=plan.article.name,
            article_chars=len(plan.article.body),
        ),
        environment=capture_environment(settings),
        results=results,
        unavailable=plan.unavailable,
    )


def _no_progress(label: str, calls: int) -> None:
    return None


async def measure_target(target: Target, plan: BenchPlan, progress: Progress) -> TargetResult:
    gateway = target.gateway or Gateway(target.settings)
    spec = CallSpec(target.provider, target.request_model)
    in_process = is_in_process(gateway, target.provider)
    if in_process:
        memory.reset_peak()
    result = TargetResult(
        provider=target.provider,
        model=target.model,
        status="measured",
        in_process=in_process,
        rss_before_bytes=memory.current_rss() if in_process else None,
    )
    try:
        for task_name in target.tasks:
            task_result = await measure_task(gateway, spec, target, task_name, plan, progress)
            result.tasks.append(task_result)
            if result.cold_start_s is None:
                result.cold_start_s = task_result.first_call_s
        await _describe(result, gateway, target)
    finally:
        await gateway.aclose()
    if in_process:
        result.peak_rss_bytes = memory.peak_rss()
    if not any(s.ok for task in result.tasks for s in task.samples):
        result.status = "failed"
        result.error = next((s.error for task in result.tasks for s in task.samples if s.error), "no call succeeded")
    return result


async def measure_task(
    gateway: Gateway, spec: CallSpec, target: Target, task_name: BenchTaskName, plan: BenchPlan, progress: Progress
) -> TaskResult:
    task, options, article = TASKS[task_name], plan.options, plan.article
    label = f"{target.provider}/{target.model} {task_name}"
    samples: list[Sample] = []
    for n in range(1 + options.warm_calls()):
        sample, answer = await measure_call(gateway, spec, task, article, f"{task_name}.{n}", task.max_tokens(article))
        samples.append(sample)
        if answer is not None:
            target.url = target.url or answer.url
            if target.model == "default":
                target.model = answer.model or target.model
        progress(label, 1)
    warm = [s for s in samples[1:] if s.ok]
    result = TaskResult(
        task=task_name,
        model=target.model,
        prompt_ref=task.prompt_ref(),
        first_call_s=samples[0].latency_s,
        samples=samples,
        success_rate=success_rate(samples),
        validity_rate=validity_rate(samples),
        latency=distribution(s.latency_s for s in warm),
        ttft=distribution(s.ttft_s for s in warm),
        prompt_tps=distribution(s.prompt_tps for s in warm),
        generation_tps=distribution(s.generation_tps for s in warm),
        mean_prompt_tokens=mean(s.prompt_tokens for s in samples if s.ok),
        mean_completion_tokens=mean(s.completion_tokens for s in samples if s.ok),
        quality=quality_means(samples),
    )
    if options.concurrency > 1:
        result.concurrency, _ = await measure_concurrency(
            gateway,
            spec,
            task,
            article,
            requests=options.concurrency,
            max_tokens=task.max_tokens(article),
            marker=f"{task_name}.parallel",
            single_tps=end_to_end_tps(warm),
        )
        progress(label + " (concurrent)", options.concurrency)
    if options.compare_raw:
        result.raw = await compare_raw(
            gateway,
            spec,
            task,
            article,
            pairs=options.warm_calls(),
            max_tokens=task.max_tokens(article),
            marker=f"{task_name}.raw",
        )
        progress(label + " (gateway vs raw)", 2 * options.warm_calls())
    return result


async def _describe(result: TargetResult, gateway: Gateway, target: Target) -> None:
    """The server URL, model file, size and loaded context of the target (facts for the report)."""
    result.model = target.model
    result.url = target.url
    provider = gateway.provider(target.provider)
    engine = getattr(provider, "engine", None)
    result.engine_load_s = getattr(engine, "load_seconds", None)
    try:
        infos = await provider.models()
    except CtiStudioError as error:
        log.info("%s: cannot list models (%s)", target.provider, error)
        infos = []
    info = next((i for i in infos if i.id in (target.model, target.request_model)), None)
    info = info or next((i for i in infos if i.type in (None, "llm")), None)
    if info is not None:
        result.context_length = info.context_length
        result.model_size_bytes = info.size_bytes
    path = model_file(target)
    if path is not None and path.exists():
        result.model_file = str(path)
        result.model_size_bytes = _size_of(path)


def model_file(target: Target) -> Path | None:
    """The file (or folder) an in-process engine loads for this target, when there is one."""
    return spec_for(target.provider).model_file(target.settings)


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def require_measurements(report: BenchReport) -> None:
    """Raise when nothing was measured: the files are written, but the command did not do its job."""
    if any(r.status == "measured" for r in report.results):
        return
    reasons = "; ".join(f"{u.provider}{'/' + u.model if u.model else ''}: {u.reason}" for u in report.unavailable[:6])
    failed = "; ".join(f"{r.provider}/{r.model}: {r.error}" for r in report.results[:6])
    raise BenchError(
        f"no provider could be measured ({failed or reasons or 'none selected'})",
        fix=next((u.fix for u in report.unavailable if u.fix), None)
        or "Start a local server or install the embedded model (`ctistudio models install "
        "qwen2.5-coder-0.5b-instruct-q4`), then run `ctistudio bench` again.",
    )
