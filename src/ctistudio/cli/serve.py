"""``ctistudio serve``: run the web app; ``ctistudio hash-password``: make a CTISTUDIO_PASSWORD_HASH."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import typer

from ctistudio.cli.common import cli_errors, console, err_console, settings


def url_for(host: str, port: int) -> str:
    """The URL to open for a server bound to ``host``:``port`` (a wildcard address shows as 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve_app(host: str, port: int, *, log_level: str = "warning", schedule: bool = False) -> None:
    """Build the app from settings and serve it with uvicorn until interrupted (``schedule``: with the jobs
    of :mod:`ctistudio.workers.schedule` running in this process)."""
    import uvicorn

    from ctistudio.web.app import create_app
    from ctistudio.web.security import WILDCARD_BINDS, AuthConfig, require_auth_for_host

    s = settings()
    require_auth_for_host(host, AuthConfig.from_settings(s))
    app = create_app(bind_host=host)
    console.print(f"[bold green]ctistudio[/] serving on [link]{url_for(host, port)}[/link]  (Ctrl+C to stop)")
    if host.strip("[]") in WILDCARD_BINDS and not s.allowed_hosts:
        err_console.print(
            f"[yellow]note:[/] bound to {host}, but only localhost, 127.0.0.1 and ::1 are accepted as Host names; "
            "set CTISTUDIO_ALLOWED_HOSTS to the names or addresses other machines use (e.g. studio.example.org)"
        )
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level}
    options |= {"proxy_headers": False, "server_header": False}
    if not schedule:
        uvicorn.run(app, **options)
        return
    asyncio.run(_serve_with_schedule(uvicorn.Server(uvicorn.Config(app, **options)), app))


async def _serve_with_schedule(server: Any, app: Any) -> None:
    """Serve, and run the schedule beside the web app (its runs are the web app's: the Runs page sees them)."""
    from ctistudio.ingest.service import IngestService
    from ctistudio.workers.schedule import InProcessSchedule, jobs

    ctx = app.state.ctx
    store = ctx.require_store()
    await asyncio.to_thread(IngestService(store, ctx.settings()).sync_sources)  # sources.yaml into the store
    for job in jobs(ctx.settings()):
        err_console.print(f"[dim]schedule: {job.name} every {job.every:g} s[/]")

    async def start_run(article_id: int) -> int:
        return int(await ctx.pipeline().start_run(article_id))

    schedule = InProcessSchedule(ctx.settings, store, ctx.gateway, start_run)
    task = asyncio.create_task(schedule.run_forever(), name="schedule")
    try:
        await server.serve()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @cli_errors
    def serve_command(
        host: str | None = typer.Option(None, "--host", help="Address to bind (default: CTISTUDIO_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default: CTISTUDIO_PORT, 8001)."),
        schedule: bool = typer.Option(
            False, "--schedule", help="Also poll sources, autorun and refresh the SigmaHQ index in this process."
        ),
    ) -> None:
        """Run the web app and REST API (OpenAPI docs at /docs). Non-loopback needs authentication."""
        s = settings()
        serve_app(host or s.host, port or s.port, schedule=schedule)

    @app.command("hash-password")
    @cli_errors
    def hash_password_command(
        token: bool = typer.Option(
            False, "--token", help="Print a new random CTISTUDIO_API_TOKEN (43 characters) instead."
        ),
    ) -> None:
        """Read a password (prompted, or from standard input) and print its CTISTUDIO_PASSWORD_HASH."""
        from ctistudio.web.security import hash_password, new_api_token

        if token:
            print(new_api_token())
            err_console.print("[dim]put it in .env as CTISTUDIO_API_TOKEN=<the line above>[/]")
            return
        if sys.stdin.isatty():
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\n")
        print(hash_password(password))
        err_console.print("[dim]put it in .env as CTISTUDIO_PASSWORD_HASH=<the line above>[/]")
