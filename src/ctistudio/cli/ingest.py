"""``ctistudio ingest``: bring articles in from sources, feeds, URLs, files, pasted text and the demo.

Every new article is chunked and embedded for search and chat right after it is stored
(:func:`ctistudio.cli.rag.index_stored`); without an embedding provider a warning says it waits for
``ctistudio rag backfill``, and the command still succeeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.ingest.intake import IngestOutcome
from ctistudio.ingest.progress import Progress as IngestProgress
from ctistudio.ingest.service import IngestService, SourcesRunReport
from ctistudio.store import Store
from ctistudio.store.sources import CheckOutcome

app = typer.Typer(
    help="Ingest articles: sources.yaml, a feed, a URL, a file, pasted text or the demo.", no_args_is_help=True
)
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON.")


def _service() -> IngestService:
    s = settings()
    return IngestService(Store(s), s)


class _RichProgress(IngestProgress):
    """Two bars: sources checked and entries fetched (totals grow as feeds reveal new entries)."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.sources = bars.add_task("sources", total=0)
        self.entries = bars.add_task("articles", total=0)
        self.new_article_ids: list[int] = []  # stored since the last indexing

    def sources_started(self, total: int) -> None:
        self.bars.update(self.sources, total=total, completed=0)

    def source_finished(self, source_id: str, outcome: CheckOutcome) -> None:
        self.bars.advance(self.sources)  # failures are logged as they happen and listed in the summary

    def entries_queued(self, count: int) -> None:
        task = self.bars.tasks[self.entries]
        self.bars.update(self.entries, total=(task.total or 0) + count)

    def entry_finished(self, outcome: IngestOutcome) -> None:
        self.bars.advance(self.entries)
        if outcome.status == "new" and outcome.article_id is not None:
            self.new_article_ids.append(outcome.article_id)

    async def index_new(self, service: IngestService, *, bar: bool = True) -> None:
        """Index the articles stored since the last call (a pass of ``ingest sources``)."""
        ids, self.new_article_ids = self.new_article_ids, []
        await _index(service, ids, bar=bar)


async def _index(service: IngestService, article_ids: list[int], *, bar: bool = True) -> str | None:
    """Index new articles for search; ``indexed``, the warning printed, or None when there was nothing new."""
    if not article_ids:
        return None
    from ctistudio.cli.rag import index_stored  # the RAG stack loads only when something new was stored

    return (await index_stored(service.store, service.settings, article_ids, bar=bar)).status


def _stored(service: IngestService, outcome: IngestOutcome, as_json: bool) -> None:
    """Index a newly stored article, then print the outcome (``chat_index`` in JSON: indexed or why not)."""
    new = [outcome.article_id] if outcome.status == "new" and outcome.article_id is not None else []
    chat_index = run(_index(service, new))
    if as_json:
        print_json({**outcome.to_dict(), "chat_index": chat_index})
        return
    _print_outcome(outcome)
    if chat_index == "indexed":
        console.print("[dim]indexed for search and chat[/]")


def _bars() -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _print_outcome(outcome: IngestOutcome) -> None:
    if outcome.status == "new":
        platforms = ", ".join(outcome.platforms) or "none detected"
        console.print(
            f"[green]stored[/] article {outcome.article_id}: {outcome.title} "
            f"(hunt score {outcome.hunt_score}, platforms: {platforms})",
            highlight=False,
        )
    elif outcome.status == "duplicate":
        console.print(f"[yellow]stored as duplicate[/] article {outcome.article_id}: {outcome.reason}", highlight=False)
    else:
        console.print(f"[dim]{outcome.status}[/] {outcome.reason or ''}", highlight=False)


def _print_run(report: SourcesRunReport, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "articles_new": report.articles_new,
                "articles_duplicate": report.articles_duplicate,
                "sources": {sid: check.__dict__ for sid, check in report.checks.items()},
            }
        )
        return
    console.print(
        f"{len(report.checks)} sources checked: {report.articles_new} new articles, "
        f"{report.articles_duplicate} duplicates, {len(report.failed)} sources failed"
    )
    for source_id, reason in report.failed.items():
        console.print(f"  [red]✘[/] {source_id}: {reason}", highlight=False, soft_wrap=True)


@app.command("sources")
@cli_errors
def sources_command(
    once: bool = typer.Option(False, "--once", help="One pass over the due sources, then exit."),
    source: list[str] = typer.Option([], "--source", "-s", help="Only these source ids (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Check every active source now, due or not."),
    sources_file: Path | None = typer.Option(None, "--sources-file", help="sources.yaml to load first."),
    as_json: bool = JsonOpt,
) -> None:
    """Poll the sources of sources.yaml (loaded into the store first); without --once, keep polling."""
    import asyncio

    service = _service()
    added, updated = service.sync_sources(sources_file)
    if added or updated:
        err_console.print(f"[dim]sources: {added} added, {updated} updated[/]")
    with _bars() as bars:
        progress = _RichProgress(bars)
        if once or source:
            report = run(service.check_sources(source_ids=source or None, force=force, progress=progress))
        else:
            err_console.print("[dim]polling sources as they fall due; Ctrl-C to stop[/]")
            try:
                run(
                    service.run_forever(
                        progress=progress,
                        stop=asyncio.Event(),
                        after_pass=lambda _: progress.index_new(service, bar=False),
                    )
                )
            except KeyboardInterrupt:
                return
            return
    run(progress.index_new(service))
    _print_run(report, as_json)


@app.command("feed")
@cli_errors
def feed_command(url: str = typer.Argument(..., help="RSS or Atom feed URL."), as_json: bool = JsonOpt) -> None:
    """Store the new entries of one RSS/Atom feed."""
    service = _service()
    with _bars() as bars:
        result = run(service.ingest_feed(url, progress=_RichProgress(bars)))
    run(_index(service, [o.article_id for o in result.outcomes if o.status == "new" and o.article_id is not None]))
    if as_json:
        print_json(
            {
                "status": result.status,
                "entries_seen": result.entries_seen,
                "known": result.known,
                "outcomes": [o.to_dict() for o in result.outcomes],
                "details": result.details(),
            }
        )
        return
    console.print(
        f"{result.entries_seen} entries: {result.count('new')} new, {result.count('duplicate')} duplicates, "
        f"{result.known} already stored, {result.count('refused') + result.count('failed')} refused/failed"
    )
    if result.warning:
        console.print(f"[yellow]warning:[/] {result.warning}", highlight=False)
    for outcome in result.outcomes:
        if outcome.status in ("refused", "failed", "skipped"):
            console.print(f"  [yellow]{outcome.status}[/] {outcome.url}: {outcome.reason}", highlight=False)


@app.command("url")
@cli_errors
def url_command(
    url: str = typer.Argument(..., help="Article page (HTML, PDF or text)."), as_json: bool = JsonOpt
) -> None:
    """Fetch one article page and store it."""
    service = _service()
    _stored(service, run(service.ingest_url(url)), as_json)


@app.command("file")
@cli_errors
def file_command(
    path: str = typer.Argument(..., help="HTML, PDF, Markdown or text file; '-' reads text from stdin."),
    title: str | None = typer.Option(None, "--title", help="Title (default: from the file)."),
    as_json: bool = JsonOpt,
) -> None:
    """Store an article from a file (size-checked against CTISTUDIO_MAX_UPLOAD_BYTES)."""
    service = _service()
    read_stdin = path == "-"
    outcome = (
        service.ingest_text(sys.stdin.read(), title=title) if read_stdin else service.ingest_file(Path(path), title)
    )
    _stored(service, outcome, as_json)


@app.command("text")
@cli_errors
def text_command(
    text: str | None = typer.Argument(None, help="The article text (default: read stdin)."),
    title: str | None = typer.Option(None, "--title"),
    url: str | None = typer.Option(None, "--url", help="Where the text comes from (used for dedup)."),
    as_json: bool = JsonOpt,
) -> None:
    """Store pasted text (Markdown with a YAML front matter is understood)."""
    service = _service()
    _stored(service, service.ingest_text(text if text is not None else sys.stdin.read(), title=title, url=url), as_json)


@app.command("demo")
@cli_errors
def demo_command(as_json: bool = JsonOpt) -> None:
    """Store the packaged demo article (Operation Paper Lantern)."""
    service = _service()
    _stored(service, service.ingest_demo(), as_json)
