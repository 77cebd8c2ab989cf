"""``ctistudio demo``: the main job of the quick start — the studio, with the demo article ready to run.

Steps: store the packaged demo article if it is not there yet, print where to open it, then serve the web
app (``ctistudio serve``) until Ctrl+C. Open the article and press "Run pipeline".
"""

from __future__ import annotations

import typer

from ctistudio.cli.common import cli_errors, console, settings


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


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @cli_errors
    def demo_command(
        host: str | None = typer.Option(None, "--host", help="Address to bind (default: CTISTUDIO_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default: CTISTUDIO_PORT, 8001)."),
    ) -> None:
        """Store the demo article (once) and start the studio's web app on it."""
        from ctistudio.cli.serve import serve_app, url_for

        s = settings()
        host, port = host or s.host, port or s.port
        article_id, new = ensure_demo_article()
        state = "stored" if new else "already stored"
        console.print(f"demo article {state}: [bold]Operation Paper Lantern[/] (article #{article_id})")
        console.print(
            f"open [link]{url_for(host, port)}articles/{article_id}[/link] and press [bold]Run pipeline[/]",
            highlight=False,
        )
        serve_app(host, port)
