"""``ctistudio demo``: the main job of the quick start — the studio, with the demo article ready to run.

Steps: make sure something can answer — when no LLM server is reachable, the embedded engine will, and its
model is installed on first use with a progress bar (``ctistudio models install``) — store the packaged demo
article if it is not there yet, print where to open it, then serve the web app (``ctistudio serve``) until
Ctrl+C. Open the article and press "Run pipeline".
"""

from __future__ import annotations

from typing import Any

import typer

from ctistudio.cli.common import cli_errors, console, run, settings
from ctistudio.errors import CtiStudioError


def ensure_demo_article() -> tuple[int, bool]:
    """The demo article's id, storing it first when missing; ``(id, newly_stored)``."""
    from ctistudio.ingest import IngestService
    from ctistudio.store import Store

    s = settings()
    with Store(s) as store:
        outcome = IngestService(store, s).ingest_demo()
    article_id = outcome.article_id or outcome.duplicate_of
    if article_id is None:
        raise RuntimeError(f"the demo article was not stored: {outcome.status} {outcome.reason or ''}")
    return article_id, outcome.status == "new"


def index_library_for_chat() -> str:
    """Make articles not indexed yet searchable by chat (best effort: a failure is reported, not raised)."""
    try:
        from ctistudio.rag import Retriever, backfill
    except ImportError:
        return "chat search is not available in this build"
    from ctistudio.llm import Gateway
    from ctistudio.store import Store

    s = settings()

    async def go() -> Any:
        async with Gateway(s) as gateway:
            with Store(s) as store:
                return await backfill(Retriever(store, gateway))

    try:
        report = run(go())
    except CtiStudioError as error:
        return f"not indexed for chat yet ({error.message}); use Chat → Index articles once a model answers"
    return f"chat index: {report.articles} article(s) added" if report.articles else "chat index up to date"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @cli_errors
    def demo_command(
        host: str | None = typer.Option(None, "--host", help="Address to bind (default: CTISTUDIO_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default: CTISTUDIO_PORT, 8001)."),
    ) -> None:
        """Store the demo article (once) and start the studio's web app on it."""
        from ctistudio.cli.models import ensure_local_models
        from ctistudio.cli.serve import serve_app, url_for

        s = settings()
        host, port = host or s.host, port or s.port
        console.print(f"[dim]{ensure_local_models(s)}[/]", highlight=False)
        article_id, new = ensure_demo_article()
        state = "stored" if new else "already stored"
        console.print(f"demo article {state}: [bold]Operation Paper Lantern[/] (article #{article_id})")
        console.print(
            f"open [link]{url_for(host, port)}articles/{article_id}[/link] and press [bold]Run pipeline[/]",
            highlight=False,
        )
        console.print(f"[dim]{index_library_for_chat()}[/]", highlight=False)
        serve_app(host, port)
