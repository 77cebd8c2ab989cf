"""llama.cpp server states that a real server shows only briefly (loading) or not at all (not running)."""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway, ProviderUnavailable
from ctistudio.llm.providers.llamacpp_server import LlamaCppServerProvider, v1_url
from ctistudio.testing.http_double import HttpDouble

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


@pytest.fixture
def loading_server():
    with HttpDouble() as double:
        for path in ("/health", "/props"):
            double.route("GET", path, lambda ex: ex.send_json(503, LOADING))
        yield double


async def test_health_says_the_model_is_loading(loading_server):
    provider = LlamaCppServerProvider(loading_server.root_url)
    health = await provider.health()
    assert not health.ok and health.detail == "the llama.cpp server is loading the model"
    assert provider.flavor is None  # not decided until the server answers /props
    await provider.aclose()


async def test_not_running_says_how_to_start_it():
    settings = load_settings(
        {
            "llamacpp_enabled": True,
            "llamacpp_server_url": "http://127.0.0.1:9",
            "llm_provider": "llamacpp",
            "retries": 0,
            "embedded": False,
        },
        env_file=None,
    )
    async with Gateway(settings) as gateway:
        with pytest.raises(ProviderUnavailable) as caught:
            await gateway.chat("hi")
    assert "llama-server -m MODEL.gguf" in caught.value.fix and "LLAMACPP_SERVER_URL" in caught.value.fix


def test_server_urls_with_or_without_v1():
    assert v1_url("http://localhost:8080") == "http://localhost:8080/v1"
    assert v1_url("http://localhost:8080/v1/") == "http://localhost:8080/v1"
