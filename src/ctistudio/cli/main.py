"""Entry point of the ``ctistudio`` command: registers each command group's module."""

from __future__ import annotations

import importlib

import typer

from ctistudio import __version__

app = typer.Typer(
    name="ctistudio",
    help="Local-first CTI workbench: articles in, huntable observables and validated Sigma rules out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, group name or None for top-level commands registered by the module itself)
GROUPS: list[tuple[str, str | None]] = [
    ("ctistudio.cli.llm", "llm"),
    ("ctistudio.cli.sigma", "sigma"),
    ("ctistudio.cli.ingest", "ingest"),
    ("ctistudio.cli.sources", "sources"),
    ("ctistudio.cli.articles", "articles"),
    ("ctistudio.cli.init", None),
    ("ctistudio.cli.demo", None),
    ("ctistudio.cli.models", "models"),
    ("ctistudio.cli.serve", None),
    ("ctistudio.cli.search", None),
    ("ctistudio.cli.chat", None),
    ("ctistudio.cli.rag", "rag"),
    ("ctistudio.cli.run", None),
    ("ctistudio.cli.runs", "runs"),
    ("ctistudio.cli.queue", "queue"),
    ("ctistudio.cli.eval", "eval"),
]


def _register() -> None:
    for module_name, group in GROUPS:
        module = importlib.import_module(module_name)
        if group is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=group)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
