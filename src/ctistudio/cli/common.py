"""What every CLI command shares: settings, the async runner, JSON output and the error edge."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import typer
from pydantic import BaseModel
from rich.console import Console

from ctistudio.config import Settings, load_settings
from ctistudio.errors import CtiStudioError
from ctistudio.logging_setup import configure_logging

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

_SETTINGS = "ctistudio.settings"  # key of this invocation's settings in the click context's meta


def settings() -> Settings:
    """Settings for this command (env + .env + saved overrides), loaded once per invocation.

    They live on the click/Typer context of the command being run (``ctx.meta``, shared by its parent and
    sub-contexts), so each invocation — a process, or a test's ``CliRunner.invoke`` — reads them afresh.
    Outside a command (no context) they are loaded on every call.
    """
    context = click.get_current_context(silent=True)
    if context is not None and _SETTINGS in context.meta:
        return context.meta[_SETTINGS]
    loaded = load_settings()
    configure_logging(loaded.log_dir, loaded.log_level)
    saved = _saved_overrides(loaded)
    if saved:
        loaded = load_settings(saved)
    return use_settings(loaded)


def use_settings(value: Settings) -> Settings:
    """Make ``value`` the settings of the command being run (``ctistudio init`` after writing .env)."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_SETTINGS] = value
    return value


def _saved_overrides(base: Settings) -> dict[str, Any]:
    """Values saved in the web app's Settings page (they override .env); none when the store is unusable."""
    try:
        from ctistudio.store import Store
    except ImportError:
        return {}
    try:
        with Store(base) as store:
            return store.load_settings_overrides()[1]
    except CtiStudioError as error:  # a CLI command must still work (and say why) without its database
        logging.getLogger(__name__).warning("saved settings not read: %s", error.message)
        return {}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """Machine-readable output on stdout (stable keys, no colour)."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, fix: str | None = None, code: int = 1) -> typer.Exit:
    """Print a one-line cause (and the fix) on stderr; return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if fix:
        err_console.print(f"[bold]fix:[/] {fix}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def cli_errors(func: Callable[..., T]) -> Callable[..., T]:
    """The CLI's error edge: our errors become a one-line cause and a fix on stderr, exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except CtiStudioError as error:
            raise fail(error.message, error.fix) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper
