"""``ctistudio llm test|models|load|chat`` against the LM Studio double: reports, exit codes and fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctistudio.testing.lmstudio_double import LMStudioDouble

RANK_MODEL = "qwen/qwen3-4b-2507"
CHAT_MODEL = "deepseek/deepseek-r1-0528-qwen3-8b"


def point_at(double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)


def checks_of(stdout: str) -> dict[str, dict]:
    report = json.loads(stdout)["reports"][0]
    return {c["name"]: c for c in report["checks"]}


def test_llm_test_on_a_healthy_server(cli, lmstudio_double: LMStudioDouble):
    result = cli("llm", "test", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and set(data) == {"ok", "reports"}
    (report,) = data["reports"]
    assert set(report) == {"provider", "ok", "url", "checks", "duration_s"}
    assert report["provider"] == "lmstudio" and report["url"] == lmstudio_double.url
    checks = {c["name"]: c for c in report["checks"]}
    assert set(next(iter(checks.values()))) == {"name", "ok", "detail", "fix", "level"}
    assert {"server reachable", "authentication", "models available", "completion", "embeddings"} <= set(checks)
    assert checks[f"model {RANK_MODEL} (rank, extract, sigma): context"]["detail"].startswith("loaded with 16,384")
    assert checks[f"model {CHAT_MODEL} (chat): context"]["ok"]
    assert "answered in" in checks["completion"]["detail"]
    assert "64 dimensions" in checks["embeddings"]["detail"]
    assert all(c["ok"] and c["fix"] is None for c in checks.values())
    one_token = lmstudio_double.requests_to("/v1/chat/completions")[0].body
    assert one_token["max_tokens"] == 1 and one_token["model"] == CHAT_MODEL


def test_llm_test_human_output(cli, lmstudio_double: LMStudioDouble):
    result = cli("llm", "test")
    assert result.exit_code == 0
    assert "all checks passed" in result.stdout and lmstudio_double.url in result.stdout


def test_llm_test_when_nothing_listens(cli):
    result = cli("llm", "test", "--json")  # conftest points LM Studio at 127.0.0.1:9
    assert result.exit_code == 1
    check = checks_of(result.stdout)["server reachable"]
    assert not check["ok"] and "connection refused" in check["detail"]
    assert "lms server start" in check["fix"] and "LMSTUDIO_API_URL" in check["fix"]
    human = cli("llm", "test")
    assert human.exit_code == 1 and "fix:" in human.stdout and "some checks failed" in human.stdout


def test_llm_test_when_a_key_is_required(cli, start_double, monkeypatch):
    point_at(start_double(LMStudioDouble, api_key="sk-lm-1"), monkeypatch)
    monkeypatch.delenv("LMSTUDIO_API_KEY")  # env() would hand the key over: the user forgot it
    result = cli("llm", "test", "--json")
    assert result.exit_code == 1
    check = checks_of(result.stdout)["authentication"]
    assert not check["ok"] and "API token is required" in check["detail"] and "LMSTUDIO_API_KEY" in check["fix"]
    monkeypatch.setenv("LMSTUDIO_API_KEY", "sk-lm-1")
    assert cli("llm", "test", "--json").exit_code == 0


def test_llm_test_when_the_context_is_too_small(cli, start_double, monkeypatch):
    point_at(start_double(LMStudioDouble, models={RANK_MODEL: 4096, CHAT_MODEL: 16384}), monkeypatch)
    result = cli("llm", "test", "--json")
    assert result.exit_code == 1
    check = checks_of(result.stdout)[f"model {RANK_MODEL} (rank, extract, sigma): context"]
    assert not check["ok"] and "loaded with 4,096 tokens" in check["detail"] and "8,192" in check["detail"]
    assert f"ctistudio llm load {RANK_MODEL} --context-length 16384" in check["fix"]


def test_llm_test_when_a_model_is_not_loaded_or_missing(cli, start_double, monkeypatch):
    point_at(start_double(LMStudioDouble, models={RANK_MODEL: 16384, CHAT_MODEL: None}), monkeypatch)
    result = cli("llm", "test", "--json")
    assert result.exit_code == 1
    checks = checks_of(result.stdout)
    loaded = checks[f"model {CHAT_MODEL} (chat): loaded"]
    assert not loaded["ok"] and f"ctistudio llm load {CHAT_MODEL}" in loaded["fix"]
    assert checks["completion"]["ok"]  # tried on the loaded rank model instead of JIT-loading the chat model
    monkeypatch.setenv("LMSTUDIO_MODEL", "typo/model-name")
    missing = checks_of(cli("llm", "test", "--json").stdout)["model typo/model-name (chat): present"]
    assert not missing["ok"] and "verify the name matches exactly" in missing["fix"]


def test_llm_test_when_the_server_is_too_slow(cli, start_double, monkeypatch):
    point_at(start_double(LMStudioDouble, latency=1.0), monkeypatch)
    monkeypatch.setenv("LMSTUDIO_TIMEOUT", "0.2")
    monkeypatch.setenv("CTISTUDIO_RETRIES", "0")
    result = cli("llm", "test", "--json")
    assert result.exit_code == 1
    check = checks_of(result.stdout)["completion"]
    assert "no answer" in check["detail"] and "LMSTUDIO_TIMEOUT" in check["fix"]


def test_llm_models_json(cli, start_double, monkeypatch):
    point_at(start_double(LMStudioDouble, models={RANK_MODEL: 8192, "big/model": None}), monkeypatch)
    result = cli("llm", "models", "--json")
    assert result.exit_code == 0
    models = {m["id"]: m for m in json.loads(result.stdout)}
    assert models[RANK_MODEL]["loaded"] is True and models[RANK_MODEL]["context_length"] == 8192
    assert models["big/model"]["loaded"] is False and models["big/model"]["max_context_length"] == 131072
    table = cli("llm", "models")
    assert table.exit_code == 0 and "big/model" in table.stdout and "8,192" in table.stdout


def test_llm_load_is_idempotent(cli, start_double, monkeypatch):
    double = start_double(LMStudioDouble, models={RANK_MODEL: 16384, "big/model": None})
    point_at(double, monkeypatch)
    reuse = cli("llm", "load", RANK_MODEL, "--context-length", "8192")
    assert reuse.exit_code == 0 and "already loaded" in reuse.stdout
    assert double.requests_to("/api/v1/models/load") == []
    grown = cli("llm", "load", RANK_MODEL, "--context-length", "32768", "--json")
    assert grown.exit_code == 0
    data = json.loads(grown.stdout)
    assert data["reused"] is False and data["unloaded"] == [RANK_MODEL] and data["context_length"] == 32768
    again = cli("llm", "load", RANK_MODEL, "--context-length", "32768", "--json")
    assert json.loads(again.stdout)["reused"] is True
    assert double.models[RANK_MODEL].instances == {RANK_MODEL: 32768}  # never a stacked "<key>:2"


def test_llm_load_without_arguments_reads_the_seed_variables(cli, start_double, monkeypatch):
    double = start_double(LMStudioDouble, models={"big/model": None})
    point_at(double, monkeypatch)
    monkeypatch.setenv("LMSTUDIO_MODEL", "big/model")
    monkeypatch.setenv("LMSTUDIO_MAX_CONTEXT", "24576")
    result = cli("llm", "load")
    assert result.exit_code == 0 and "loaded:" in result.stdout
    assert double.models["big/model"].instances == {"big/model": 24576}


def test_llm_load_refuses_more_than_the_model_supports(cli, lmstudio_double: LMStudioDouble):
    result = cli("llm", "load", RANK_MODEL, "--context-length", "262144")
    assert result.exit_code == 1
    assert "supports at most 131,072" in result.stderr and "fix:" in result.stderr


def test_llm_chat_streams_the_answer(cli, lmstudio_double: LMStudioDouble):
    lmstudio_double.reply("<think>hmm</think>Hunt for rundll32 loading DLLs from %TEMP%.")
    result = cli("llm", "chat", "What should I hunt?", "--task", "rank")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Hunt for rundll32 loading DLLs from %TEMP%."
    assert f"lmstudio/{RANK_MODEL}" in result.stderr and "first token" in result.stderr
    assert lmstudio_double.requests_to("/v1/chat/completions")[0].body["stream"] is True


def test_llm_chat_on_a_dead_server_says_cause_and_fix(cli):
    result = cli("llm", "chat", "hi")
    assert result.exit_code == 1
    assert "error:" in result.stderr and "fix:" in result.stderr and "lms server start" in result.stderr


def test_the_installed_command_runs_the_report(lmstudio_double: LMStudioDouble, tmp_path: Path):
    env = {**os.environ, "CTISTUDIO_EMBEDDED": "false"}
    command = [str(Path(sys.executable).parent / "ctistudio"), "llm", "test", "--json"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reports"][0]["url"] == lmstudio_double.url
