"""Entry point of the ``ctistudio`` command.

Command modules are imported lazily: ``ctistudio llm test`` imports the ``llm`` module only, not the web
app, the store or the ingestion stack, so every command starts quickly. ``ctistudio --help`` imports them all.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import typer
from typer.core import TyperGroup

from ctistudio import __version__

# command name -> (module, kind): "group" modules expose ``app`` (a Typer sub-app); "register" modules
# expose ``register(app)``, which adds top-level commands (one module may add several).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("ctistudio.cli.init", "register"),
    "demo": ("ctistudio.cli.demo", "register"),
    "serve": ("ctistudio.cli.serve", "register"),
    "hash-password": ("ctistudio.cli.serve", "register"),
    "llm": ("ctistudio.cli.llm", "group"),
    "models": ("ctistudio.cli.models", "group"),
    "ingest": ("ctistudio.cli.ingest", "group"),
    "sources": ("ctistudio.cli.sources", "group"),
    "articles": ("ctistudio.cli.articles", "group"),
    "run": ("ctistudio.cli.run", "register"),
    "runs": ("ctistudio.cli.runs", "group"),
    "sigma": ("ctistudio.cli.sigma", "group"),
    "queue": ("ctistudio.cli.queue", "group"),
    "eval": ("ctistudio.cli.eval", "group"),
    "search": ("ctistudio.cli.search", "register"),
    "chat": ("ctistudio.cli.chat", "register"),
    "rag": ("ctistudio.cli.rag", "group"),
    "bench": ("ctistudio.cli.bench", "register"),
    "export": ("ctistudio.cli.export", "group"),
    "mcp": ("ctistudio.cli.mcp", "register"),
    "worker": ("ctistudio.cli.worker", "register"),
    "scheduler": ("ctistudio.cli.worker", "register"),
}


@cache
def _registered_commands(module_name: str) -> dict[str, Any]:
    """The top-level commands a ``register(app)`` module adds, as click commands by name."""
    holder = typer.Typer()
    importlib.import_module(module_name).register(holder)
    holder.callback()(lambda: None)  # a callback makes Typer build a group even for a single command
    return dict(typer.main.get_command(holder).commands)  # type: ignore[attr-defined]


def load_command(name: str) -> Any:
    """Import the module behind command ``name`` and return its click command."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    module_name, kind = entry
    if kind == "register":
        return _registered_commands(module_name).get(name)
    command = typer.main.get_command(importlib.import_module(module_name).app)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: subcommands are loaded the first time they are asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = load_command(cmd_name)
            if command is not None:
                self.commands[cmd_name] = command
        return command


app = typer.Typer(
    name="ctistudio",
    cls=LazyGroup,
    help="Local-first CTI workbench: articles in, huntable observables and validated Sigma rules out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
