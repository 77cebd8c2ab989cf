"""Behaviours of the spec that a user found broken (issue 12, item 4); each test failed before its fix."""

from __future__ import annotations

import json

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import ContextOverflow, Gateway, Router, RouterPolicy
from ctistudio.llm.providers.lmstudio import LMStudioProvider
from ctistudio.llm.providers.mlx import MLXProvider, is_apple_silicon
from ctistudio.llm.types import ChatRequest, Message, Task
from ctistudio.testing.http_double import Fault
from ctistudio.testing.lmstudio_double import LMStudioDouble

RANK_MODEL = "qwen/qwen3-4b-2507"
CHAT_MODEL = "deepseek/deepseek-r1-0528-qwen3-8b"


@pytest.mark.parametrize(
    "typed", ["{root}", "{root}/", "{root}/v1", "{root}/v1/", "{root}/v1/chat/completions", " {root} "]
)
def test_a_base_url_is_normalised_wherever_it_enters(typed, lmstudio_double: LMStudioDouble, cli, monkeypatch):
    url = typed.format(root=lmstudio_double.root_url)
    expected = lmstudio_double.root_url + "/v1"
    # the environment / .env
    monkeypatch.setenv("LMSTUDIO_API_URL", url)
    monkeypatch.setenv("LMSTUDIO_EMBEDDING_URL", typed.format(root=lmstudio_double.root_url).split("/v1")[0])
    settings = load_settings(env_file=None)
    assert settings.lmstudio_api_url == expected
    assert settings.lmstudio_embedding_url == expected + "/embeddings"
    # a value saved on the Settings page (an override by field name)
    monkeypatch.setenv("LMSTUDIO_API_URL", "http://127.0.0.1:9/v1")
    assert load_settings({"lmstudio_api_url": url}, env_file=None).lmstudio_api_url == expected
    # and what a connection test then does with it: completions reach /v1/chat/completions
    monkeypatch.setenv("LMSTUDIO_API_URL", url)
    result = cli("llm", "test", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["reports"][0]["url"] == expected
    assert lmstudio_double.requests_to("/chat/completions") == []
    assert lmstudio_double.requests_to("/v1/chat/completions")


def test_init_writes_the_same_normalised_urls(cli, tmp_path):
    result = cli("init", "--yes", "--skip-test", "--lmstudio-url", "http://192.168.1.65:1234/")
    assert result.exit_code == 0, result.output
    env = (tmp_path / ".env").read_text()
    assert "LMSTUDIO_API_URL=http://192.168.1.65:1234/v1\n" in env
    assert "LMSTUDIO_EMBEDDING_URL=http://192.168.1.65:1234/v1/embeddings\n" in env


def test_load_when_the_server_cannot_unload_stacks_a_second_instance_and_says_so(cli, start_double, monkeypatch):
    double = start_double(LMStudioDouble, models={RANK_MODEL: 4096, CHAT_MODEL: 16384})
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", "/nonexistent")  # no `lms` CLI either
    refusal = {"error": {"message": "Instance is busy", "type": "invalid_request_error"}}
    double.fail(Fault(status=404, body=refusal, paths=("/api/v1/models/unload",)))
    result = cli("llm", "load", RANK_MODEL, "--context-length", "16384", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["reused"] is False and data["context_length"] == 16384 and data["unloaded"] == []
    assert data["instance_id"] == f"{RANK_MODEL}:2"
    assert "Instance is busy" in data["kept"][RANK_MODEL] and "404" in data["kept"][RANK_MODEL]
    assert double.models[RANK_MODEL].instances == {RANK_MODEL: 4096, f"{RANK_MODEL}:2": 16384}
    # the human output says what failed, never that this LM Studio is older than 0.4.0
    double.fail(Fault(status=404, body=refusal, paths=("/api/v1/models/unload",), times=2))
    double.models[RANK_MODEL].instances = {RANK_MODEL: 4096}
    human = cli("llm", "load", RANK_MODEL, "--context-length", "16384")
    assert human.exit_code == 0, human.output
    assert "older than 0.4" not in human.output and "Instance is busy" in human.stderr
    assert f"lms unload {RANK_MODEL}" in human.stderr


@pytest.mark.skipif(is_apple_silicon(), reason="the message for machines without Apple Silicon")
def test_llm_test_of_mlx_off_apple_silicon_says_only_that(cli, monkeypatch):
    monkeypatch.setenv("MLX_ENABLED", "true")
    monkeypatch.setenv("MLX_MODEL_PATH", "models/mlx/llama-3.2-1b-instruct")
    result = cli("llm", "test", "--provider", "mlx", "--json")
    assert result.exit_code == 1
    (check,) = json.loads(result.stdout)["reports"][0]["checks"]
    assert check["name"] == "platform" and not check["ok"]
    assert check["detail"].startswith("MLX runs only on Apple Silicon")
    assert "pip install mlx-lm" in check["fix"] and "llama-server" not in check["fix"]


@pytest.mark.skipif(is_apple_silicon(), reason="the platform error exists only without Apple Silicon")
async def test_a_platform_error_is_not_retried_and_causes_no_cooldown(lmstudio_double: LMStudioDouble):
    mlx = MLXProvider("/models/mlx")
    router = Router([mlx, LMStudioProvider(lmstudio_double.url)], policy=RouterPolicy(backoff=0, cooldown_failures=3))
    request = ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=8)
    for _ in range(4):  # more calls than cooldown_failures
        assert (await router.complete(request)).provider == "lmstudio"
    state = router.endpoint_state("mlx")
    assert state.failures == 0 and state.cooling_down() == 0
    await router.aclose()


async def test_every_context_fix_names_a_window_the_connection_test_accepts(start_double):
    # The rank model is loaded with 2,048 tokens and the prompt (~2,700 tokens) may not be cut: the fix
    # must name at least the 8,192 tokens `llm test` requires for rank, not the next power of two (4,096).
    double = start_double(LMStudioDouble, models={RANK_MODEL: 2048, CHAT_MODEL: 16384})
    settings = load_settings({"lmstudio_api_url": double.url, "embedded": False}, env_file=None)
    request = ChatRequest(messages=[Message(role="user", content="certutil -urlcache -f " * 350)], task=Task.RANK)
    async with Gateway(settings) as gateway:
        with pytest.raises(ContextOverflow) as fitted:
            await gateway.router().complete(request.model_copy(update={"max_tokens": 64}))
    assert "--context-length 8192" in (fitted.value.fix or ""), fitted.value.fix
    # a server-reported overflow (the window unknown beforehand) gets the same floor
    blind = start_double(LMStudioDouble, api_version="none", models={RANK_MODEL: 2048, CHAT_MODEL: 16384})
    settings = load_settings({"lmstudio_api_url": blind.url, "embedded": False}, env_file=None)
    async with Gateway(settings) as gateway:
        with pytest.raises(ContextOverflow) as reported:
            longer = [Message(role="user", content="certutil -urlcache -f " * 700)]  # ~3,850 of its tokens
            await gateway.router().complete(request.model_copy(update={"max_tokens": 64, "messages": longer}))
    assert "--context-length 8192" in (reported.value.fix or ""), reported.value.fix


def test_the_report_names_the_url_after_a_401(cli, start_double, monkeypatch):
    double = start_double(LMStudioDouble, api_key="sk-lm-1")
    monkeypatch.setenv("LMSTUDIO_API_URL", double.url)
    result = cli("llm", "test", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)["reports"][0]
    assert report["url"] == double.url
    human = cli("llm", "test")
    assert double.url in human.stdout.splitlines()[0]
