"""``ctistudio bench`` as a user runs it: a real process against the LM Studio double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ctistudio.testing.lmstudio_double import LMStudioDouble

from .conftest import answer_for


def ctistudio(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250", "CTISTUDIO_EMBEDDED": "false", **env},
    )


def test_bench_prints_the_summary_and_writes_the_files(start_double, tmp_path: Path):
    lms = start_double(LMStudioDouble, latency=0.01)
    lms.responder = answer_for
    done = ctistudio(
        "bench", "--provider", "lmstudio", "--provider", "mlx", "--tasks", "rank,chat", "--quick", "--out", "out",
        env=lms.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "LLM benchmark" in done.stdout and "Cold start (s)" in done.stdout
    assert "qwen/qwen3-4b-2507" in done.stdout and "rank" in done.stdout
    assert "unavailable mlx" in done.stdout
    (results,) = (tmp_path / "out").glob("llm_benchmark_results_*.json")
    run_id = results.stem.removeprefix("llm_benchmark_results_")
    assert (tmp_path / "out" / f"LLM_BENCHMARK_REPORT_{run_id}.md").is_file()
    assert (tmp_path / "out" / f"llm_benchmark_{run_id}_latency.png").is_file()
    assert f"results: out/{results.name}" in done.stdout
    assert len(lms.requests_to("/v1/chat/completions")) == 4


def test_bench_json_goes_to_stdout(start_double, tmp_path: Path):
    lms = start_double(LMStudioDouble, latency=0.01)
    lms.responder = answer_for
    done = ctistudio(
        "bench", "-p", "lmstudio", "--tasks", "chat", "--repeat", "2", "--json", "--out", "o", env=lms.env()
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["params"]["repeat"] == 2
    assert [len(t["samples"]) for r in report["results"] for t in r["tasks"]] == [3]
    assert report["files"]["results"] in os.listdir(tmp_path / "o")


def test_nothing_measurable_exits_1_with_cause_and_fix_and_still_writes_the_report(tmp_path: Path):
    done = ctistudio(
        "bench", "--provider", "lmstudio", "--tasks", "rank", "--quick", "--out", "out",
        env={"LMSTUDIO_API_URL": "http://127.0.0.1:9/v1"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: no provider could be measured" in done.stderr
    assert "fix:" in done.stderr
    assert "unavailable lmstudio" in done.stdout
    assert list((tmp_path / "out").glob("LLM_BENCHMARK_REPORT_*.md"))


def test_unknown_task_or_provider_is_refused_before_anything_runs(tmp_path: Path):
    done = ctistudio("bench", "--tasks", "rank,summarise", env={})
    assert done.returncode == 1 and "summarise" in done.stderr and "rank,extract,sigma,chat" in done.stderr
    done = ctistudio("bench", "--provider", "lmstudioo", env={})
    assert done.returncode == 1 and "lmstudioo" in done.stderr and "fix:" in done.stderr
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").glob("llm_benchmark_*"))
