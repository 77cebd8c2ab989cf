"""``ctistudio serve``: run the web app; ``ctistudio hash-password``: make a CTISTUDIO_PASSWORD_HASH."""

from __future__ import annotations

import sys

import typer

from ctistudio.cli.common import cli_errors, console, err_console, settings


def url_for(host: str, port: int) -> str:
    """The URL to open for a server bound to ``host``:``port`` (a wildcard address shows as 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve_app(host: str, port: int, *, log_level: str = "warning") -> None:
    """Build the app from settings and serve it with uvicorn until interrupted."""
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
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False, server_header=False)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @cli_errors
    def serve_command(
        host: str | None = typer.Option(None, "--host", help="Address to bind (default: CTISTUDIO_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default: CTISTUDIO_PORT, 8001)."),
    ) -> None:
        """Run the web app and REST API (OpenAPI docs at /docs). Non-loopback needs authentication."""
        s = settings()
        serve_app(host or s.host, port or s.port)

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
