"""Run the ``llm`` and ``init`` commands in-process, with settings re-read for every invocation.

The app is assembled the way ``ctistudio.cli.main`` registers these groups, but without importing every
other group (whose dependencies are not under test here); ``test_the_installed_command_runs_the_report``
runs the real installed ``ctistudio`` entry point once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from ctistudio.cli import init, llm

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.add_typer(llm.app, name="llm")
init.register(app)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli("llm", "test", "--json")`` → the click Result (``exit_code``, ``stdout``, ``stderr``)."""
    monkeypatch.setenv("CTISTUDIO_EMBEDDED", "false")  # the embedded engine is not under test here
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return invoke
