"""Running the ``ctistudio`` CLI from tests: as a child process, or in-process with fresh settings per call."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.store import Store
from ctistudio.testing.lmstudio_double import LMStudioDouble

CLI = [sys.executable, "-m", "ctistudio.cli.main"]


def cli_env(double: LMStudioDouble, store: Store) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMSTUDIO_", "CTISTUDIO_", "LLM_"))}
    env.update(double.env())
    env.update({"LLM_PROVIDER": "lmstudio", "CTISTUDIO_DATABASE_URL": store.url, "CTISTUDIO_RETRY_BACKOFF": "0.01"})
    env["COLUMNS"] = "250"  # wide tables: titles on one line
    return env


def ctistudio(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def in_process_cli(double: LMStudioDouble, store: Store, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli("queue", "list")`` runs the command in this process, with settings loaded afresh each time."""
    for key, value in cli_env(double, store).items():
        if key.startswith(("LMSTUDIO_", "CTISTUDIO_", "LLM_", "COLUMNS")):
            monkeypatch.setenv(key, value)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke
