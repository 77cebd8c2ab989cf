"""The files of a benchmark run, and reading them back (the web app's Benchmarks page uses both).

One run writes, in the output directory (default ``logs/``):

- ``llm_benchmark_results_<RUN_ID>.json``: :class:`~ctistudio.bench.models.BenchReport`;
- ``LLM_BENCHMARK_REPORT_<RUN_ID>.md``: the same figures as Markdown tables, embedding the charts;
- ``llm_benchmark_<RUN_ID>_latency.png`` and ``llm_benchmark_<RUN_ID>_throughput.png``.

``RUN_ID`` is the local start time ``YYYYMMDD_HHMMSS`` (``_2``, ``_3`` … appended if taken).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ctistudio.bench.charts import write_charts
from ctistudio.bench.models import BenchFiles, BenchReport, Distribution, TargetResult, TaskResult
from ctistudio.errors import InvalidInput

JSON_PATTERN = "llm_benchmark_results_{run_id}.json"
MARKDOWN_PATTERN = "LLM_BENCHMARK_REPORT_{run_id}.md"
CHART_STEM = "llm_benchmark_{run_id}"


def _free_run_id(out_dir: Path, run_id: str) -> str:
    candidate, n = run_id, 1
    while (out_dir / JSON_PATTERN.format(run_id=candidate)).exists():
        n += 1
        candidate = f"{run_id}_{n}"
    return candidate


def write_report(report: BenchReport, out_dir: Path) -> BenchFiles:
    """Write the JSON, the charts and the Markdown report; returns their names (also set on ``report``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report.run_id = _free_run_id(out_dir, report.run_id)
    charts = write_charts(report, out_dir, CHART_STEM.format(run_id=report.run_id))
    report.files = BenchFiles(
        results=JSON_PATTERN.format(run_id=report.run_id),
        markdown=MARKDOWN_PATTERN.format(run_id=report.run_id),
        charts=charts,
    )
    (out_dir / report.files.markdown).write_text(render_markdown(report), encoding="utf-8")
    payload = json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False)
    (out_dir / report.files.results).write_text(payload + "\n", encoding="utf-8")
    return report.files


def load_report(path: Path) -> BenchReport:
    """A results file read back and validated (a file that does not fit says so)."""
    try:
        return BenchReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise InvalidInput(
            f"{path} is not a readable ctistudio benchmark result ({exc.__class__.__name__})",
            fix="Run `ctistudio bench` again; files from an older schema version cannot be read.",
        ) from exc


def list_reports(out_dir: Path) -> list[Path]:
    """The results files in ``out_dir``, newest run first."""
    return sorted(out_dir.glob(JSON_PATTERN.format(run_id="*")), reverse=True)


# -- Markdown --------------------------------------------------------------------------------------------
def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip() or "-"


def _row(values: Sequence[object]) -> str:
    return "| " + " | ".join(_cell(v) for v in values) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(list(header)), "|" + "|".join("---" for _ in header) + "|", *(_row(r) for r in rows), ""]


def _s(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _rate(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _p(dist: Distribution | None, key: str = "p50") -> float | None:
    return getattr(dist, key) if dist is not None else None


def _mb(value: int | None) -> str:
    return f"{value / 1e6:,.0f} MB" if value else "-"


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def command_line(report: BenchReport) -> str:
    p = report.params
    parts = ["ctistudio bench"]
    parts += [f"--provider {name}" for name in p.providers]
    parts += [f"--model {name}" for name in p.models]
    parts.append(f"--tasks {','.join(p.tasks)}")
    parts.append("--quick" if p.quick else f"--repeat {p.repeat}")
    if p.concurrency > 1:
        parts.append(f"--concurrency {p.concurrency}")
    if p.compare_raw:
        parts.append("--compare-raw")
    return " ".join(parts)


def _measured(report: BenchReport) -> list[tuple[TargetResult, TaskResult]]:
    return [(target, task) for target in report.results for task in target.tasks]


def summary_rows(report: BenchReport) -> list[list[str]]:
    """The summary table's rows (also printed by the CLI)."""
    rows = []
    for target, task in _measured(report):
        rows.append(
            [
                target.provider,
                target.model,
                task.task,
                _s(target.cold_start_s) if task is target.tasks[0] else "",
                _s(task.first_call_s),
                _s(_p(task.latency)),
                _s(_p(task.latency, "p95")),
                _s(_p(task.ttft)),
                _rate(_p(task.prompt_tps)),
                _rate(_p(task.generation_tps)),
                _percent(task.success_rate),
                _percent(task.validity_rate),
                _mb(target.peak_rss_bytes),
            ]
        )
    return rows


SUMMARY_HEADER = [
    "Provider",
    "Model",
    "Task",
    "Cold start (s)",
    "First call (s)",
    "p50 (s)",
    "p95 (s)",
    "TTFT p50 (s)",
    "Prompt tok/s",
    "Gen tok/s",
    "Success",
    "Valid",
    "Peak RSS",
]


def _environment_lines(report: BenchReport) -> list[str]:
    env = report.environment
    ram = f"{env.ram_bytes / 2**30:.0f} GiB RAM" if env.ram_bytes else "RAM unknown"
    load = f" Load average at the start: {', '.join(map(str, env.load_average))}." if env.load_average else ""
    return [
        f"Measured on **{env.hostname}**: {env.cpu}, {env.cpu_count} logical CPUs, {ram}, "
        f"{env.gpu or 'no GPU'}; {env.os}; Python {env.python}.{load}",
        "",
    ]


def render_markdown(report: BenchReport) -> str:
    p = report.params
    lines = [
        f"# LLM benchmark {report.run_id}",
        "",
        *_environment_lines(report),
        f"Started {report.started_at}, took {report.duration_s:.0f} s. Command: `{command_line(report)}`.",
        f"Article: `{p.article}` ({p.article_chars:,} characters), with the pipeline's own prompts and schemas; "
        f"per task one first call, then {p.repeat} warm call(s) (the p50/p95 figures).",
        "",
        "## Summary",
        "",
    ]
    if report.results:
        lines += _table(SUMMARY_HEADER, summary_rows(report))
        lines += [
            "Cold start: the target's first call, model load included. TTFT: time to the first streamed token. "
            "Token rates are the server's own figures where it reports them (llama-server), else measured by "
            "the client. Valid: schema-valid JSON (rank, extract), every rule pySigma-valid (sigma), a non-empty "
            "answer (chat). Peak RSS: this process, in-process engines only.",
            "",
        ]
    else:
        lines += ["Nothing was measured: no provider asked for was available (see below).", ""]
    lines += _quality_section(report) + _concurrency_section(report) + _raw_section(report)
    lines += _unavailable_section(report) + _models_section(report) + _charts_section(report)
    lines += _versions_section(report)
    return "\n".join(lines).rstrip() + "\n"


def _quality_section(report: BenchReport) -> list[str]:
    rows = []
    for target, task in _measured(report):
        figures = ", ".join(f"{k} {v:.2f}" if v % 1 else f"{k} {v:.0f}" for k, v in task.quality.items())
        tokens = f"{_rate(task.mean_prompt_tokens)} / {_rate(task.mean_completion_tokens)}"
        problem = next((s.detail or s.error for s in task.samples if not s.valid), "")
        rows.append([target.provider, target.model, task.task, tokens, figures or "-", problem or ""])
    if not rows:
        return []
    header = ["Provider", "Model", "Task", "Tokens in / out (mean)", "Quality (means)", "First problem seen"]
    return ["## Quality", "", *_table(header, rows)]


def _concurrency_section(report: BenchReport) -> list[str]:
    rows = [
        [
            target.provider,
            target.model,
            task.task,
            c.requests,
            c.succeeded,
            _s(c.wall_s),
            _rate(c.aggregate_generation_tps),
            _rate(c.single_generation_tps),
            f"{c.speedup:.2f}×" if c.speedup else "-",
            c.peak_in_flight,
        ]
        for target, task in _measured(report)
        if (c := task.concurrency) is not None
    ]
    if not rows:
        return []
    header = ["Provider", "Model", "Task", "Requests", "OK", "Wall (s)", "Aggregate tok/s", "Single tok/s",
              "Speed-up", "Peak in flight"]  # fmt: skip
    note = "Aggregate: completion tokens of all concurrent calls / wall time; single: the sequential calls' rate."
    return ["## Concurrency", "", *_table(header, rows), note, ""]


def _raw_section(report: BenchReport) -> list[str]:
    rows = []
    for target, task in _measured(report):
        raw = task.raw
        if raw is None:
            continue
        ratio = f"{raw.overhead_ratio:.3f}" if raw.overhead_ratio else (raw.unavailable or "-")
        rows.append(
            [target.provider, target.model, task.task, raw.pairs, _s(raw.gateway_p50_s), _s(raw.raw_p50_s), ratio]
        )
    if not rows:
        return []
    header = ["Provider", "Model", "Task", "Pairs", "Gateway p50 (s)", "Raw httpx p50 (s)", "Ratio"]
    return ["## Gateway overhead", "", *_table(header, rows)]


def _unavailable_section(report: BenchReport) -> list[str]:
    if not report.unavailable and all(r.status == "measured" for r in report.results):
        return []
    rows = [[u.provider, u.model or "", u.reason, u.fix or ""] for u in report.unavailable]
    rows += [[r.provider, r.model, f"every call failed: {r.error}", ""] for r in report.results if r.status == "failed"]
    return ["## Unavailable", "", *_table(["Provider", "Model", "Reason", "Fix"], rows)]


def _models_section(report: BenchReport) -> list[str]:
    rows = [
        [
            r.provider,
            r.model,
            r.url or "",
            Path(r.model_file).name if r.model_file else "",
            _mb(r.model_size_bytes),
            f"{r.context_length:,}" if r.context_length else "-",
            _s(r.engine_load_s),
            _mb(r.rss_before_bytes),
            _mb(r.peak_rss_bytes),
        ]
        for r in report.results
    ]
    if not rows:
        return []
    header = ["Provider", "Model", "URL", "File", "Size", "Context", "Engine load (s)", "RSS before", "Peak RSS"]
    return ["## Models and servers", "", *_table(header, rows)]


def _charts_section(report: BenchReport) -> list[str]:
    charts = report.files.charts if report.files else {}
    if not charts:
        return []
    titles = {"latency": "Latency per call", "throughput": "Tokens per second"}
    lines = ["## Charts", ""]
    for name, file in charts.items():
        lines += [f"![{titles.get(name, name)}]({file})", ""]
    return lines


def _versions_section(report: BenchReport) -> list[str]:
    env = report.environment
    versions = ", ".join(f"{k} {v}" for k, v in env.versions.items())
    settings = ", ".join(f"{k}={v}" for k, v in env.settings.items())
    return ["## Environment", "", f"- Versions: {versions}", f"- Settings: {settings}", ""]
