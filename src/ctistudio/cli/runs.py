"""``ctistudio runs``: list pipeline runs, show one, resume one that was interrupted or gated."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.cli.run import print_run, report_finished, run_and_watch

if TYPE_CHECKING:
    from ctistudio.pipeline.service import RunSummary, RunView

app = typer.Typer(help="Pipeline runs: list, show, resume.", no_args_is_help=True)


@app.command("list")
@cli_errors
def list_command(
    status: str | None = typer.Option(None, "--status", help="Only runs in this status (e.g. running, failed)."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """The newest runs with their status, rank score and number of rules."""

    from ctistudio.pipeline.service import open_service

    async def go():
        async with open_service(settings()) as service:
            return service.list_runs(status=status, limit=limit)

    runs = run(go())
    if as_json:
        print_json(runs)
        return
    if not runs:
        err_console.print("no pipeline runs yet: start one with `ctistudio run --article ID`")
        return
    table = Table("id", "article", "status", "step", "score", "rules", "worker", "created", "finished")
    for r in runs:
        table.add_row(
            str(r.id),
            str(r.article_id),
            r.status + (" [yellow](degraded)[/]" if r.warnings else ""),
            r.current_step or "",
            "" if r.score is None else str(r.score),
            str(r.rules),
            _worker(r),
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.finished_at.strftime("%Y-%m-%d %H:%M") if r.finished_at else "",
        )
    console.print(table)


def _worker(run: RunSummary) -> str:
    """Who executes the run (workers only): its name, and whether its lease has run out."""
    if not run.worker:
        return ""
    return run.worker + (" [yellow](lease expired)[/]" if run.status == "running" and not run.worker_active else "")


def _print_steps(view: RunView) -> None:
    table = Table("step", "status", "provider/model", "tokens in/out (cached)", "time", "note")
    for step in view.steps:
        model = f"{step.provider}/{step.model}" if step.model else ""
        tokens = ""
        if step.prompt_tokens is not None:
            tokens = f"{step.prompt_tokens}/{step.completion_tokens}"
            if step.cached_tokens:
                tokens += f" ({step.cached_tokens})"
        seconds = f"{step.duration_ms / 1000:.1f}s" if step.duration_ms is not None else ""
        table.add_row(step.name, step.status, model, tokens, seconds, step.error or "")
    console.print(table)


@app.command("show")
@cli_errors
def show_command(
    run_id: int = typer.Argument(..., help="The run's id."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON (steps, outputs, rules, config)."),
) -> None:
    """One run: its steps (model, tokens, time), prompt versions, observables and rules."""

    from ctistudio.pipeline.service import open_service

    async def go() -> RunView:
        async with open_service(settings()) as service:
            return service.run_view(run_id, with_config=as_json)

    view = run(go())
    if as_json:
        print_json(view)
        return
    console.print(f"[bold]{view.article_title}[/] (article {view.article_id})", highlight=False)
    _print_steps(view)
    if view.observables:
        found = ", ".join(f"{count} {kind}" for kind, count in sorted(view.observables.items()))
        console.print(f"observables: {found}", highlight=False)
    console.print("prompts: " + ", ".join(view.prompt_versions.values()), highlight=False, soft_wrap=True)
    print_run(view)


@app.command("resume")
@cli_errors
def resume_command(
    run_id: int = typer.Argument(..., help="The run's id."),
    from_step: str | None = typer.Option(None, "--from", help="Redo this step and every later one."),
    force: bool = typer.Option(False, "--force", help="Go on past the rank threshold (for a gated run)."),
    as_json: bool = typer.Option(False, "--json", help="Print the finished run as JSON (no progress)."),
) -> None:
    """Continue a run from its last finished step (after a crash, a kill, or a gate)."""
    from ctistudio.pipeline.service import open_service

    async def go() -> RunView:
        async with open_service(settings(), concurrency=1) as service:
            await service.resume_run(run_id, from_step=from_step, force=True if force else None)
            return await run_and_watch(service, run_id, quiet=as_json)

    report_finished(run(go()), as_json=as_json)
