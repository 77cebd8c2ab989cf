"""A backend added the way docs/gateway.md "Adding a backend" says: vLLM, an OpenAI-compatible server under its
own name and URL setting — three settings in config.py and one spec in llm/providers/specs.py, nothing else."""

from __future__ import annotations

import json

import pytest

from ctistudio.config import load_settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm import Gateway
from ctistudio.llm.hosts import HostSet
from ctistudio.llm.providers import auto_chain, build_provider
from ctistudio.testing.openai_compatible_double import OpenAICompatibleDouble

MODEL = "Qwen/Qwen2.5-7B-Instruct"


async def test_vllm_answers_under_its_own_name_with_its_own_url_model_and_key(start_double):
    vllm = start_double(OpenAICompatibleDouble, models={MODEL: 32768}, api_key="sk-vllm")
    settings = load_settings(
        {"vllm_url": vllm.url, "vllm_model": MODEL, "vllm_api_key": "sk-vllm", "llm_provider": "vllm"}, env_file=None
    )
    async with Gateway(settings) as gateway:
        result = await gateway.chat("Which LOLBin downloads files?", task="rank")
    (request,) = vllm.requests_to("/v1/chat/completions")
    assert (result.provider, result.model) == ("vllm", MODEL)
    assert request.body["model"] == MODEL and request.body["seed"] == 42  # the settings every provider gets
    assert request.headers["authorization"] == "Bearer sk-vllm"


def test_its_url_setting_enables_it_in_the_auto_chain_after_openai_compat():
    off = load_settings({"embedded": False}, env_file=None)
    on = load_settings(
        {"vllm_url": "http://127.0.0.1:8000/v1", "openai_compat_url": "http://127.0.0.1:8001/v1"}, env_file=None
    )
    assert "vllm" not in auto_chain(off)
    chain = auto_chain(on)
    assert chain.index("openai_compat") + 1 == chain.index("vllm")


def test_several_urls_are_several_hosts_and_a_missing_url_says_which_setting():
    settings = load_settings({"vllm_url": "http://127.0.0.1:8000/v1, http://127.0.0.1:8002/v1"}, env_file=None)
    provider = build_provider("vllm", settings)
    assert isinstance(provider, HostSet) and [h.endpoint for h in provider.hosts()] == [
        "http://127.0.0.1:8000/v1",
        "http://127.0.0.1:8002/v1",
    ]
    with pytest.raises(ConfigurationError, match="CTISTUDIO_VLLM_URL"):
        build_provider("vllm", load_settings(env_file=None))


def test_the_connection_test_knows_it(start_double, monkeypatch):
    from typer.testing import CliRunner

    from ctistudio.cli.main import app

    vllm = start_double(OpenAICompatibleDouble, models={MODEL: 32768})
    monkeypatch.setenv("CTISTUDIO_VLLM_URL", vllm.url)
    monkeypatch.setenv("CTISTUDIO_VLLM_MODEL", MODEL)
    result = CliRunner().invoke(app, ["llm", "test", "--provider", "vllm", "--json"])
    (report,) = json.loads(result.stdout)["reports"]
    assert report["provider"] == "vllm" and report["url"] == vllm.url
    assert result.exit_code == 0, result.stdout
