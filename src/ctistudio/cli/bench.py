"""``ctistudio bench``: measure the real CTI tasks on every available provider and model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ctistudio.bench import BenchOptions, BenchReport, execute_plan, plan_benchmark, require_measurements, write_report
from ctistudio.bench.models import TASK_NAMES
from ctistudio.bench.report import SUMMARY_HEADER, summary_rows
from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.errors import ConfigurationError


def _tasks(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in TASK_NAMES]
    if unknown or not names:
        raise ConfigurationError(
            f"--tasks: unknown task(s) {', '.join(unknown) or '(none)'}",
            fix=f"Use a comma-separated subset of: {','.join(TASK_NAMES)}.",
        )
    return names


def _print_summary(report: BenchReport, out_dir: Path) -> None:
    table = Table(*SUMMARY_HEADER, title=f"LLM benchmark {report.run_id}", title_justify="left")
    for row in summary_rows(report):
        table.add_row(*(str(v) for v in row))
    if report.results:
        console.print(table)
    for item in report.unavailable:
        model = f"/{item.model}" if item.model else ""
        console.print(f"[yellow]unavailable[/] {item.provider}{model}: {item.reason}", highlight=False, soft_wrap=True)
        if item.fix:
            console.print(f"    [dim]fix:[/] {item.fix}", highlight=False, soft_wrap=True)
    for target in report.results:
        if target.status == "failed":
            console.print(f"[red]failed[/] {target.provider}/{target.model}: {target.error}", highlight=False)
    if report.files:
        console.print(f"results: {out_dir / report.files.results}", highlight=False)
        console.print(f"report:  {out_dir / report.files.markdown}", highlight=False)
        for chart in report.files.charts.values():
            console.print(f"chart:   {out_dir / chart}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @cli_errors
    def bench_command(
        provider: list[str] = typer.Option(
            [], "--provider", "-p", help="Provider to measure (repeatable). Default: every enabled local provider."
        ),
        model: list[str] = typer.Option(
            [], "--model", "-m", help="Model to measure (repeatable); PROVIDER=MODEL for one provider only."
        ),
        tasks: str = typer.Option(",".join(TASK_NAMES), "--tasks", help="Comma-separated tasks."),
        quick: bool = typer.Option(False, "--quick", help="One warm call per task (instead of 3)."),
        repeat: int | None = typer.Option(None, "--repeat", min=1, help="Warm calls per task (default 3; --quick 1)."),
        concurrency: int = typer.Option(1, "--concurrency", min=1, help="Also send N calls at once per task."),
        compare_raw: bool = typer.Option(
            False, "--compare-raw", help="Also time the gateway against a bare HTTP client on the same server."
        ),
        out: Path | None = typer.Option(None, "--out", help="Output directory (default: CTISTUDIO_LOG_DIR, logs/)."),
        article: Path | None = typer.Option(None, "--article", help="Benchmark on this article (default: the demo)."),
        as_json: bool = typer.Option(False, "--json", help="Print the results JSON on stdout."),
    ) -> None:
        """Measure cold start, latency, time to first token, tokens/s, validity and memory per provider,
        model and task; write JSON, a Markdown report and PNG charts."""
        s = settings()
        options = BenchOptions(
            providers=provider,
            models=model,
            tasks=_tasks(tasks),  # type: ignore[arg-type]
            quick=quick,
            repeat=repeat,
            concurrency=concurrency,
            compare_raw=compare_raw,
            article=article,
        )
        out_dir = out or s.log_dir

        async def go() -> BenchReport:
            plan = await plan_benchmark(options, s)
            names = ", ".join(f"{t.provider}/{t.model}" for t in plan.targets) or "nothing"
            err_console.print(f"[dim]measuring {names}; {len(plan.unavailable)} unavailable[/]", highlight=False)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=True) as bar:
                task_id = bar.add_task("benchmark", total=plan.total_calls())

                def progress(label: str, calls: int) -> None:
                    bar.update(task_id, advance=calls, description=label)

                return await execute_plan(plan, s, progress=progress)

        report = run(go())
        write_report(report, out_dir)
        if as_json:
            print_json(report)
        else:
            _print_summary(report, out_dir)
        require_measurements(report)
