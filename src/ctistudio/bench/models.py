"""The benchmark's result types: what ``logs/llm_benchmark_results_TIMESTAMP.json`` holds.

The JSON file is :class:`BenchReport` dumped with ``model_dump(mode="json")``; the web app's Benchmarks
page reads it back with ``BenchReport.model_validate_json``. ``schema_version`` changes when a field is
renamed or removed (adding a field does not change it). Times are seconds, sizes bytes, rates tokens/s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

BenchTaskName = Literal["rank", "extract", "sigma", "chat"]
TASK_NAMES: tuple[BenchTaskName, ...] = ("rank", "extract", "sigma", "chat")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sample(_Strict):
    """One measured call."""

    ok: bool  # the provider answered (no error)
    valid: bool = False  # the answer is usable as is: schema-valid JSON / pySigma-valid rules / non-empty text
    error: str | None = None
    latency_s: float | None = None  # wall time of the whole call, as the caller sees it
    ttft_s: float | None = None  # time to the first streamed token
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server took from its prefix cache
    prompt_tps: float | None = None  # prompt tokens/s (the server's figure when it reports one)
    generation_tps: float | None = None  # generated tokens/s (the server's figure when it reports one)
    answered_by: str | None = None  # "provider/model" that answered (always the provider asked for)
    quality: dict[str, float] = Field(default_factory=dict)  # task-specific, see bench/tasks.py
    detail: str | None = None  # why an answer was not valid (first problem only)


class Distribution(_Strict):
    """Summary of one figure over the warm samples."""

    n: int
    p50: float
    p95: float
    mean: float
    min: float
    max: float


class ConcurrencyResult(_Strict):
    """N identical-size requests sent at once: what the server does in parallel."""

    requests: int
    succeeded: int
    wall_s: float
    completion_tokens: int
    aggregate_generation_tps: float | None  # all completion tokens / wall time
    single_generation_tps: float | None  # the sequential end-to-end rate of the same task, for comparison
    speedup: float | None  # aggregate / single
    peak_in_flight: int  # most requests the gateway had at the server at once


class RawComparison(_Strict):
    """The same requests through the gateway and through a bare HTTP client, interleaved."""

    pairs: int
    gateway_p50_s: float | None
    raw_p50_s: float | None
    overhead_ratio: float | None  # gateway p50 / raw p50 (1.00 = no overhead)
    raw_client: str = "httpx"
    unavailable: str | None = None  # why the comparison could not run for this provider


class TaskResult(_Strict):
    """One provider × model × task."""

    task: BenchTaskName
    model: str
    prompt_ref: str  # the pipeline prompt(s) used, name@version#hash
    first_call_s: float | None  # the task's first call (not part of the warm figures)
    samples: list[Sample]  # every call, the first one included
    success_rate: float  # answered / calls
    validity_rate: float  # valid / answered
    latency: Distribution | None = None  # warm calls
    ttft: Distribution | None = None
    prompt_tps: Distribution | None = None
    generation_tps: Distribution | None = None
    mean_prompt_tokens: float | None = None
    mean_completion_tokens: float | None = None
    quality: dict[str, float] = Field(default_factory=dict)  # means over answered calls
    concurrency: ConcurrencyResult | None = None
    raw: RawComparison | None = None


class TargetResult(_Strict):
    """One provider × model: its cold start, memory and tasks."""

    provider: str
    model: str
    status: Literal["measured", "failed"]
    url: str | None = None  # the server that answered (in-process engines: their loopback URL)
    in_process: bool = False
    cold_start_s: float | None = None  # the first call of the run (includes loading the model)
    engine_load_s: float | None = None  # the engine's own load time, when it reports one
    rss_before_bytes: int | None = None  # this process before the first call (in-process engines only)
    peak_rss_bytes: int | None = None  # this process's peak while the target ran (in-process engines only)
    model_file: str | None = None
    model_size_bytes: int | None = None
    context_length: int | None = None
    tasks: list[TaskResult] = Field(default_factory=list)
    error: str | None = None


class Unavailable(_Strict):
    """A provider (or model) that was asked for and could not be measured, and why."""

    provider: str
    model: str | None = None
    reason: str
    fix: str | None = None


class Environment(_Strict):
    """The machine and software the figures were measured on."""

    hostname: str
    os: str
    python: str
    cpu: str
    cpu_count: int | None
    ram_bytes: int | None
    gpu: str | None
    load_average: list[float] | None = None  # 1, 5, 15 min at the start: other work on the machine skews figures
    versions: dict[str, str]
    settings: dict[str, str]  # the settings that shape the figures (temperature, context sizes …)


class BenchParams(_Strict):
    providers: list[str]
    models: list[str]
    tasks: list[BenchTaskName]
    quick: bool
    repeat: int
    concurrency: int
    compare_raw: bool
    max_tokens: dict[str, int]
    article: str  # the fixture's file name
    article_chars: int


class BenchFiles(_Strict):
    """The files of one run, relative to the output directory."""

    results: str  # the JSON file
    markdown: str
    charts: dict[str, str] = Field(default_factory=dict)  # chart name → PNG file


class BenchReport(_Strict):
    schema_version: int = SCHEMA_VERSION
    run_id: str  # the TIMESTAMP of the file names (YYYYMMDD_HHMMSS, local time)
    started_at: str  # ISO 8601
    finished_at: str
    duration_s: float
    params: BenchParams
    environment: Environment
    results: list[TargetResult] = Field(default_factory=list)
    unavailable: list[Unavailable] = Field(default_factory=list)
    files: BenchFiles | None = None
