"""``ctistudio bench``: what users need to choose a model — latency, time to first token, tokens/s,
validity and memory of the real CTI tasks on every available provider and model.

    from ctistudio.bench import BenchOptions, run_benchmark, write_report
    report = await run_benchmark(BenchOptions(tasks=["rank", "extract"], quick=True), settings=settings)
    files = write_report(report, settings.log_dir)      # JSON + Markdown + PNG charts

The web app's Benchmarks page reads the files back with :func:`list_reports` and :func:`load_report`.
"""

from ctistudio.bench.errors import BenchError
from ctistudio.bench.models import SCHEMA_VERSION, TASK_NAMES, BenchReport
from ctistudio.bench.report import list_reports, load_report, render_markdown, write_report
from ctistudio.bench.runner import (
    BenchOptions,
    BenchPlan,
    execute_plan,
    plan_benchmark,
    require_measurements,
    run_benchmark,
)

__all__ = [
    "SCHEMA_VERSION",
    "TASK_NAMES",
    "BenchError",
    "BenchOptions",
    "BenchPlan",
    "BenchReport",
    "execute_plan",
    "list_reports",
    "load_report",
    "plan_benchmark",
    "render_markdown",
    "require_measurements",
    "run_benchmark",
    "write_report",
]
