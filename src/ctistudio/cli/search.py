"""``ctistudio search QUERY``: hybrid search over article chunks and Sigma rules, with scores."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, print_json, run, settings
from ctistudio.cli.rag import index_pending
from ctistudio.errors import InvalidInput
from ctistudio.llm import Gateway
from ctistudio.rag import Retriever, SearchFilters, SearchResults
from ctistudio.store import Store


def parse_day(value: str | None, option: str) -> datetime | None:
    """``YYYY-MM-DD`` (or a full ISO time) as an aware UTC datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option}: {value!r} is not a date", fix=f"Use {option} 2025-01-31.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filters_from_options(
    source: str | None, platform: str | None, min_hunt_score: int | None, since: str | None, until: str | None
) -> SearchFilters:
    return SearchFilters(
        source_id=source,
        platform=platform.lower() if platform else None,
        min_hunt_score=min_hunt_score,
        published_after=parse_day(since, "--since"),
        published_before=parse_day(until, "--until"),
    )


def search_as_dict(results: SearchResults) -> dict:
    """Stable JSON shape of a search (``ctistudio search --json`` and the web API)."""
    return results.model_dump(mode="json")


def _print(results: SearchResults) -> None:
    if results.corpus_chunks == 0 and results.corpus_rules == 0:
        console.print("The library is empty: ingest articles, then run `ctistudio rag backfill`.")
        return
    if results.empty:
        console.print(f"Nothing matches {results.query!r}.")
        return
    if results.chunks:
        table = Table("#", "score", "cosine", "keyword", "article", "excerpt", title="Articles")
        for rank, chunk in enumerate(results.chunks, start=1):
            table.add_row(
                str(rank),
                f"{chunk.score:.4f}",
                f"{chunk.vector_score:.3f}" if chunk.vector_score is not None else "–",
                f"{chunk.keyword_score:.2f}" if chunk.keyword_score is not None else "–",
                f"[{chunk.article_id}] {chunk.title[:60]}",
                " ".join(chunk.text.split())[:110],
            )
        console.print(table)
    if results.rules:
        table = Table("#", "score", "cosine", "keyword", "rule", "id", "where", title="Sigma rules")
        for rank, rule in enumerate(results.rules, start=1):
            table.add_row(
                str(rank),
                f"{rule.score:.4f}",
                f"{rule.vector_score:.3f}" if rule.vector_score is not None else "–",
                f"{rule.keyword_score:.2f}" if rule.keyword_score is not None else "–",
                rule.title[:60],
                rule.rule_id or "",
                rule.path or f"generated #{rule.db_id}",
            )
        console.print(table)
    for note in results.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"[dim]{results.embedding_model} · {results.timings_ms.get('total', 0):.0f} ms[/]")


async def _search(query: str, filters: SearchFilters, limit: int, rules: int, index_new: bool) -> SearchResults:
    s = settings()
    async with Gateway(s) as gateway:
        with Store(s) as store:
            retriever = Retriever(store, gateway)
            if index_new:
                await index_pending(retriever)
            return await retriever.search(query, filters=filters, limit=limit, rule_limit=rules)


def register(app: typer.Typer) -> None:
    @app.command("search")
    @cli_errors
    def search_command(
        query: str = typer.Argument(..., help="What to look for, in your words."),
        limit: int = typer.Option(8, "--limit", min=1, max=50, help="Article chunks to return."),
        rules: int = typer.Option(4, "--rules", min=0, max=20, help="Sigma rules to return (0 = none)."),
        source: str | None = typer.Option(None, "--source", help="Only this source id."),
        platform: str | None = typer.Option(None, "--platform", help="windows, linux, macos or cloud."),
        min_hunt_score: int | None = typer.Option(None, "--min-hunt-score", min=0, max=100),
        since: str | None = typer.Option(None, "--since", help="Published on or after (YYYY-MM-DD)."),
        until: str | None = typer.Option(None, "--until", help="Published before (YYYY-MM-DD)."),
        index_new: bool = typer.Option(True, "--index/--no-index", help="Index new articles first."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Ranked article chunks and Sigma rules for QUERY (meaning + keywords, fused)."""
        filters = filters_from_options(source, platform, min_hunt_score, since, until)
        results = run(_search(query, filters, limit, rules, index_new))
        if as_json:
            print_json(search_as_dict(results))
        else:
            _print(results)
