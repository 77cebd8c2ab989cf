"""``ctistudio mcp``: serve ctistudio's tools to MCP clients (IDE agents, assistants) over stdio or HTTP."""

from __future__ import annotations

import ipaddress

import typer

from ctistudio.cli.common import cli_errors, err_console, settings
from ctistudio.errors import InvalidInput


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    @app.command("mcp")
    @cli_errors
    def mcp_command(
        http: bool = typer.Option(False, "--http", help="Serve streamable HTTP instead of stdio."),
        host: str = typer.Option("127.0.0.1", "--host", help="With --http: a loopback address to bind."),
        port: int = typer.Option(8765, "--port", min=1, max=65535, help="With --http: the port."),
        allow_writes: bool = typer.Option(
            False, "--allow-writes", help="Let clients approve and reject rules (off: those tools refuse)."
        ),
    ) -> None:
        """An MCP server (official SDK): search, ask, show article/run/rule, start runs, list the queue.

        stdio by default — what an IDE launches (`"command": "ctistudio", "args": ["mcp"]`); --http serves
        streamable HTTP at http://HOST:PORT/mcp on a loopback address only."""
        from ctistudio.mcp_server.server import build_server

        if http and not _loopback(host):
            raise InvalidInput(
                f"--host {host} is not a loopback address; the MCP server has no authentication",
                fix="Use --host 127.0.0.1 (or ::1), or stdio (no --http).",
            )
        server = build_server(settings(), allow_writes=allow_writes)
        mode = "read and write" if allow_writes else "read-only (approve/reject refused; --allow-writes enables)"
        if http:
            err_console.print(f"ctistudio MCP server on http://{host}:{port}/mcp — {mode}", highlight=False)
            server.run("streamable-http", host=host, port=port)
        else:
            err_console.print(f"ctistudio MCP server on stdio — {mode}", highlight=False)
            server.run("stdio")
