"""``ctistudio rag``: the search index — backfill (chunk + embed existing articles) and status."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.config import Settings
from ctistudio.llm import Gateway
from ctistudio.rag import IngestIndexing, Retriever, backfill, index_after_ingest, index_articles
from ctistudio.rag.vector_index import vector_backend
from ctistudio.store import Store
from ctistudio.store.chunks import (
    articles_to_index,
    count_chunks,
    count_searchable_articles,
    stored_embedding_models,
)

app = typer.Typer(help="The search index of RAG chat: backfill, status.", no_args_is_help=True)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


async def index_pending(retriever: Retriever) -> int:
    """Index articles stored since the last indexing (ingested from the CLI, say) before searching them."""
    with retriever.store.session() as session:
        probe_needed = count_searchable_articles(session) > 0
    if not probe_needed:
        return 0
    _, key = await retriever.embed(["ctistudio embedding probe"])
    with retriever.store.session() as session:
        pending = articles_to_index(session, key)
    if not pending:
        return 0
    with _bar() as bar:
        task = bar.add_task("indexing new articles", total=len(pending))
        report = await index_articles(retriever, pending, progress=lambda d, t: bar.update(task, completed=d))
    return report.articles


async def index_stored(
    store: Store, s: Settings, article_ids: list[int], *, gateway: Gateway | None = None, bar: bool = True
) -> IngestIndexing:
    """Chunk and embed articles a command just stored, so search and chat find them at once.

    Never fails the command: when no embedding provider answers, one warning line on stderr says the
    articles wait for ``ctistudio rag backfill`` (or the first search). ``bar=False`` when another
    progress display is live (Rich shows one at a time).
    """
    if not article_ids:
        return IngestIndexing()
    if gateway is None:
        async with Gateway(s) as own:
            return await index_stored(store, s, article_ids, gateway=own, bar=bar)
    retriever = Retriever(store, gateway, settings=s)
    if bar:
        with _bar() as bars:
            task = bars.add_task("indexing for search", total=len(article_ids))

            def progress(done: int, total: int) -> None:
                bars.update(task, completed=done, total=total)

            result = await index_after_ingest(retriever, article_ids, progress=progress)
    else:
        result = await index_after_ingest(retriever, article_ids)
    if result.reason is not None:
        err_console.print(f"[yellow]warning:[/] {result.warning()}", highlight=False, soft_wrap=True)
    return result


@app.command("backfill")
@cli_errors
def backfill_command(
    reindex: bool = typer.Option(False, "--reindex", help="Drop every chunk and re-embed (after a model change)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many articles."),
    rules: bool = typer.Option(True, "--rules/--no-rules", help="Also embed the Sigma rules (SigmaHQ + generated)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Chunk and embed the articles not indexed yet with the current embedding model."""

    async def work() -> dict:
        s = settings()
        async with Gateway(s) as gateway:
            with Store(s) as store, _bar() as bar:
                retriever = Retriever(store, gateway)
                task = bar.add_task("articles", total=None)
                report = await backfill(
                    retriever,
                    reindex=reindex,
                    limit=limit,
                    progress=lambda d, t: bar.update(task, completed=d, total=t),
                )
                rule_count = 0
                if rules:
                    rule_task = bar.add_task("sigma rules", total=None)
                    collection = await retriever.rule_collection(
                        progress=lambda d, t: bar.update(rule_task, completed=d, total=t)
                    )
                    rule_count = len(collection.docs)
        return {"articles": report.articles, "chunks": report.chunks, "model": report.model, "rules": rule_count,
                "skipped": report.skipped}  # fmt: skip

    result = run(work())
    if as_json:
        print_json(result)
    else:
        console.print(
            f"Indexed {result['articles']} article(s) into {result['chunks']} chunk(s) with {result['model']}; "
            f"{result['rules']} Sigma rule(s) searchable."
        )


@app.command("status")
@cli_errors
def status_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """What is indexed: chunks, articles, embedding models, vector and keyword backends, rules folder."""
    s = settings()
    with Store(s) as store:
        with store.session() as session:
            models = stored_embedding_models(session)
            status = {
                "articles_searchable": count_searchable_articles(session),
                "chunks": count_chunks(session),
                "embedding_models": models,
                "mixed_models": len(models) > 1,
            }
        backend = vector_backend(store)
        status["database"] = store.dialect
    status["vector_backend"] = {"name": backend.name, "detail": backend.detail}
    status["keyword_backend"] = "fts5" if status["database"] == "sqlite" else "postgresql-full-text"
    status["sigma_rules_dir"] = str(s.sigma_rules_dir) if s.sigma_rules_dir else None
    if as_json:
        print_json(status)
        return
    for key, value in status.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)
