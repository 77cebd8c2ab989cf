"""``ctistudio eval``: score the extract and sigma steps on labelled article sets; JSON + Markdown reports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings

if TYPE_CHECKING:
    from ctistudio.pipeline.evals import EvalReport

app = typer.Typer(help="Evaluate extraction and Sigma generation on labelled article sets.", no_args_is_help=True)

SetOpt = typer.Option(
    ..., "--set", help="Folder with articles.json and ground_truth.json.", exists=True, file_okay=False
)
OutOpt = typer.Option(None, "--out", help="Where to write the reports (default: ./eval-reports/<time>).")
ProviderOpt = typer.Option(None, "--provider", "-p", help="LLM provider (default: LLM_PROVIDER).")


def _out_dir(out: Path | None) -> Path:
    return out or Path("eval-reports") / time.strftime("%Y%m%d-%H%M%S")


def _print_report(report: EvalReport, paths: tuple[Path, Path]) -> None:
    table = Table("metric", "precision", "recall", "F1", "tp", "fp", "fn")
    for name, s in report.totals.items():
        table.add_row(name, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.tp), str(s.fp), str(s.fn))
    console.print(
        f"[bold]{report.kind} {report.set}[/] ({len(report.articles)} articles, target {report.target}, "
        f"mode {report.mode}, {report.seconds:.1f}s)",
        highlight=False,
    )
    console.print(table)
    err_console.print(f"reports: {paths[0]} and {paths[1]}", highlight=False)


@app.command("extract")
@cli_errors
def extract_command(
    set_dir: Path = SetOpt,
    agent: str | None = typer.Option(None, "--agent", help="The extractor to score (default: from the folder)."),
    provider: str | None = ProviderOpt,
    no_llm: bool = typer.Option(False, "--no-llm", help="Score the deterministic pre-extractor alone."),
    out: Path | None = OutOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Precision, recall and F1 of one extraction sub-agent (normalised exact matching)."""
    from ctistudio.llm import Gateway
    from ctistudio.pipeline.eval_runs import eval_extract
    from ctistudio.pipeline.evals import write_report

    async def go() -> EvalReport:
        if no_llm:
            return await eval_extract(set_dir, None, agent=agent)
        async with Gateway(settings()) as gateway:
            return await eval_extract(
                set_dir,
                gateway,
                agent=agent,
                provider=provider,
                progress=None if as_json else lambda url: err_console.print(f"[dim]✔ {url}[/]", highlight=False),
            )

    report = run(go())
    paths = write_report(report, _out_dir(out))
    if as_json:
        print_json(report)
    else:
        _print_report(report, paths)


@app.command("sigma")
@cli_errors
def sigma_command(
    set_dir: Path = SetOpt,
    provider: str | None = ProviderOpt,
    out: Path | None = OutOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Log-source and detection-atom precision/recall of generated rules against labelled rules."""
    from ctistudio.llm import Gateway
    from ctistudio.pipeline.eval_runs import eval_sigma
    from ctistudio.pipeline.evals import write_report

    async def go() -> EvalReport:
        async with Gateway(settings()) as gateway:
            return await eval_sigma(
                set_dir,
                gateway,
                provider=provider,
                progress=None if as_json else lambda url: err_console.print(f"[dim]✔ {url}[/]", highlight=False),
            )

    report = run(go())
    paths = write_report(report, _out_dir(out))
    if as_json:
        print_json(report)
    else:
        _print_report(report, paths)
