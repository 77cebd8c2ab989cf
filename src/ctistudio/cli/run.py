"""``ctistudio run``: one article through the pipeline, with step progress, then the rules and their verdicts.

Also the shared display of a run (``ctistudio runs show`` and ``runs resume`` use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.errors import InvalidInput

if TYPE_CHECKING:  # the pipeline (SQLAlchemy, pySigma) is imported when a command runs, not at start-up
    from ctistudio.pipeline.runner import ProgressEvent
    from ctistudio.pipeline.service import PipelineService, RunView

_MARK = {"succeeded": "[green]✔[/]", "skipped": "[yellow]–[/]", "failed": "[red]✘[/]", "gated": "[yellow]■[/]"}


def describe_step(event: ProgressEvent) -> str:
    """One line per finished step: what it found, in a few words."""
    d = event.detail
    step = event.step
    if step == "prepare":
        text = f"kept {d.get('kept_chars', 0):,} of {d.get('chars', 0):,} characters"
        platforms = d.get("platforms") or []
        return text + (f"; platforms {', '.join(platforms)}" if platforms else "")
    if step == "rank":
        verdict = "passes" if d.get("passed") else "below"
        return f"huntability {d.get('score')}/10 ({d.get('band')}), {verdict} the threshold {d.get('threshold')}"
    if step == "extract":
        counts = d.get("counts") or {}
        found = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing"
        return f"{found}; {d.get('dropped', 0)} dropped by the hallucination guard"
    if step == "sigma":
        origins = d.get("by_origin") or {}
        floor = f" ({origins['floor']} built by the floor)" if origins.get("floor") else ""
        return f"{d.get('valid', 0)} valid, {d.get('invalid', 0)} invalid rules{floor}"
    if step == "novelty":
        if d.get("reason"):
            return str(d["reason"])
        summary = ", ".join(f"{v} {k}" for k, v in sorted((d.get("summary") or {}).items())) or "no valid rule"
        return f"{summary}; {d.get('queued', 0)} queued for review"
    return ""


def progress_printer(run_id: int | None = None) -> Any:
    """A progress sink that prints one line per step on stderr."""

    def sink(event: ProgressEvent) -> None:
        if run_id is not None and event.run_id != run_id:
            return
        prefix = f"run {event.run_id} "
        if event.kind == "step_started":
            err_console.print(f"[dim]{prefix}… {event.step}[/]", highlight=False)
        elif event.kind == "step_cached":
            err_console.print(f"[dim]{prefix}✔ {event.step} (finished earlier)[/]", highlight=False)
        elif event.kind == "step_finished":
            mark = _MARK.get(event.status or "", "")
            seconds = event.detail.get("seconds", 0)
            line = f"{prefix}{mark} {event.step:<8} {describe_step(event)} [dim]({seconds:.1f}s)[/]"
            err_console.print(line, highlight=False, soft_wrap=True)
        elif event.kind == "step_failed":
            err_console.print(f"{prefix}[red]✘ failed:[/] {event.detail.get('error')}", highlight=False)

    return sink


def print_run(view: RunView) -> None:
    """The run's status line, then its rules with validation and novelty verdicts."""
    mark = _MARK.get(view.status, "")
    console.print(
        f"{mark} run {view.id} of article {view.article_id} [bold]{view.status}[/]"
        + (f" — {view.error}" if view.error else ""),
        highlight=False,
        soft_wrap=True,
    )
    if view.status == "gated":
        console.print(
            "  below the rank threshold: no rules generated. Run again with --force to generate anyway "
            f"(`ctistudio runs resume {view.id} --force`).",
            highlight=False,
        )
    if view.warnings:
        console.print("[yellow]degraded:[/] part of this run's output is a deterministic floor, not the model's")
        for line in view.warnings:
            console.print(f"  [yellow]![/] {line}", highlight=False, soft_wrap=True)
    if not view.rules:
        return
    table = Table("id", "title", "log source", "origin", "valid", "verdict", "closest SigmaHQ rule", "review")
    for rule in view.rules:
        logsource = "/".join(v for v in rule.logsource.values() if v)
        valid = "[green]yes[/]" if rule.valid else f"[red]no ({len(rule.errors)} errors)[/]"
        top = rule.similar[0] if rule.similar else None
        closest = f"{top.get('title', '')} ({float(top.get('score', 0)):.2f})" if top else ""
        verdict = rule.verdict or ("unchecked" if rule.valid else "")
        table.add_row(str(rule.id), rule.title, logsource, rule.origin, valid, verdict, closest, rule.review_state)
    console.print(table)


async def run_and_watch(service: PipelineService, run_id: int, *, quiet: bool) -> RunView:
    """Wait for ``run_id`` while printing its progress; return its final view."""
    sinks = service.runner.sinks
    sink = progress_printer(run_id)
    if not quiet:
        sinks.append(sink)
    try:
        await service.wait(run_id)
    finally:
        if sink in sinks:
            sinks.remove(sink)
    return service.run_view(run_id)


async def intake(service: PipelineService, url: str | None, file: Path | None, *, quiet: bool) -> int:
    """Store the article at ``url`` or in ``file`` (deduplicated by ingestion) and return the id to run."""
    from ctistudio.ingest import IngestService

    ingest = IngestService(service.store, service.settings)
    outcome = await ingest.ingest_url(url) if url else ingest.ingest_file(file)  # type: ignore[arg-type]
    if outcome.article_id is None or outcome.status not in ("new", "duplicate", "exists"):
        raise InvalidInput(
            f"the article was not stored ({outcome.status}): {outcome.reason}", fix="Check the URL or file."
        )
    article_id = outcome.duplicate_of or outcome.article_id
    if not quiet:
        note = f" ({outcome.reason})" if outcome.reason else ""
        err_console.print(f"[dim]article {article_id}: {outcome.title}{note}[/]", highlight=False, soft_wrap=True)
    if outcome.status == "new":  # searchable at once (a warning, not a failure, without an embedding provider)
        from ctistudio.cli.rag import index_stored

        await index_stored(service.store, service.settings, [article_id], gateway=service.gateway, bar=not quiet)
    return article_id


def report_finished(view: RunView, *, as_json: bool) -> None:
    """Print a finished run (JSON or table); exit 1 when it failed."""
    if as_json:
        print_json(view)
    else:
        print_run(view)
    if view.status == "failed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("run")
    @cli_errors
    def run_command(
        article: int | None = typer.Option(None, "--article", "-a", help="Id of a stored article."),
        url: str | None = typer.Option(None, "--url", help="Fetch this article page first (HTML, PDF, text)."),
        file: Path | None = typer.Option(None, "--file", help="Store this file first (HTML, PDF, Markdown, text)."),
        provider: str | None = typer.Option(None, "--provider", "-p", help="LLM provider (default: LLM_PROVIDER)."),
        force: bool = typer.Option(False, "--force", help="Generate rules even below the rank threshold."),
        as_json: bool = typer.Option(False, "--json", help="Print the finished run as JSON (no progress)."),
    ) -> None:
        """Run one article through the pipeline: rank, extract, Sigma generation, novelty, review queue."""
        if sum(x is not None for x in (article, url, file)) != 1:
            raise InvalidInput(
                "say which article to run: exactly one of --article, --url or --file",
                fix="e.g. `ctistudio run --article 3` (ids: `ctistudio articles list`) or "
                "`ctistudio run --file report.pdf`.",
            )

        from ctistudio.pipeline.service import open_service

        async def go() -> RunView:
            async with open_service(settings(), concurrency=1) as service:
                article_id = article if article is not None else await intake(service, url, file, quiet=as_json)
                run_id = service.create_run(article_id, provider=provider, force=force)
                if not as_json:
                    err_console.print(f"[dim]run {run_id}: article {article_id}[/]", highlight=False)
                await service.runner.submit(run_id)
                return await run_and_watch(service, run_id, quiet=as_json)

        report_finished(run(go()), as_json=as_json)
