"""``ctistudio worker`` / ``scheduler`` refuse to start without a broker that answers, saying what to do."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ctistudio.cli import worker

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
worker.register(app)


@pytest.mark.parametrize("command", [["worker"], ["scheduler"], ["worker", "--queues", "workflow"]])
def test_no_broker_no_worker(command, monkeypatch):
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert "CTISTUDIO_BROKER_URL is not set" in result.stderr and "serve --schedule" in result.stderr


def test_a_broker_that_does_not_answer_is_named_with_the_fix(monkeypatch):
    monkeypatch.setenv("CTISTUDIO_BROKER_URL", "redis://127.0.0.1:9/0")  # nothing listens on port 9
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "redis://127.0.0.1:9/0 does not answer" in result.stderr and "Start Redis" in result.stderr


def test_an_unknown_queue_is_refused(broker_url, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_BROKER_URL", broker_url)
    result = CliRunner().invoke(app, ["worker", "--queues", "workflow,gpu"])
    assert result.exit_code == 1
    assert "unknown queue 'gpu'" in result.stderr and "workflow, default" in result.stderr
