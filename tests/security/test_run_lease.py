"""Finding 7 (low): ``runs resume`` of a run still running in another process was accepted, and both
processes ran it (25 LLM calls instead of 13). The in-process runner now leases each run to its process
like a worker does: a second process is refused with the holder's name and starts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from tests.web.analyst import respond
from typer.testing import CliRunner

from ctistudio.cli.main import app as cli_app
from ctistudio.config import load_settings
from ctistudio.ingest import IngestService
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.runs import get_run
from ctistudio.testing.lmstudio_double import LMStudioDouble

RANK_PROMPT = "SIGMA HUNTABILITY"


@pytest.fixture
def analyst():
    with LMStudioDouble() as double:
        double.responder = respond
        yield double


def _run_status(run_id: int) -> str | None:
    with Store(load_settings(env_file=None)) as store, store.session() as session:
        try:
            return get_run(session, run_id).status
        except Exception:  # not created yet
            return None


def test_resume_of_a_run_running_in_another_process_is_refused(analyst, monkeypatch):
    env = {**analyst.env(), "LLM_PROVIDER": "lmstudio", "CTISTUDIO_EMBEDDED": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env_file=None)
    with Store(settings) as store:
        article_id = IngestService(store, settings).ingest_text(demo_article()).article_id
    analyst.slow_down(1.0, times=3)  # the first answers take a second: the run is running for a while
    child = subprocess.Popen(
        [sys.executable, "-m", "ctistudio.cli.main", "run", "--article", str(article_id), "--json"],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _run_status(1) != "running":
            assert time.monotonic() < deadline and child.poll() is None, "the run never started in the child"
            time.sleep(0.1)
        refused = CliRunner().invoke(cli_app, ["runs", "resume", "1"])
        assert refused.exit_code == 1, refused.output
        assert f"run 1 is being executed by process {child.pid}@" in refused.output
        assert "Wait for it to finish" in refused.output
        assert _run_status(1) == "running" and child.poll() is None  # the holder goes on undisturbed
        ranked = [r for r in analyst.requests if RANK_PROMPT in str(r.body)]
        assert len(ranked) <= 1, f"the article was ranked {len(ranked)} times: the run started twice"
    finally:
        child.terminate()  # the rest of the run is not under test (a killed run resumes: tests/pipeline)
        child.communicate(timeout=60)
