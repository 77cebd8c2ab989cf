"""llama.cpp server states that a real server shows only briefly (loading) or not at all (not running)."""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway, ProviderUnavailable
from ctistudio.llm.providers.llamacpp_server import LlamaCppServerProvider, v1_url
from ctistudio.llm.types import ChatRequest, Message
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


# -- a shared prefix on a server that cannot copy slots -------------------------------------------------------
# llama-server's words when it was started without --slot-save-path (HTTP 501, ERROR_TYPE_NOT_SUPPORTED)
NO_SLOT_SAVE = {
    "error": {
        "code": 501,
        "message": "This server does not support slots action. Start it with `--slot-save-path`",
        "type": "not_supported_error",
    }
}
ANSWER = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 1, "total_tokens": 41},
}


@pytest.fixture
def server_without_slot_saving():
    with HttpDouble() as double:
        double.route("GET", "/props", lambda ex: ex.send_json(200, {"total_slots": 2}))
        double.route("POST", "/v1/chat/completions", lambda ex: ex.send_json(200, ANSWER))
        for slot in ("0", "1"):
            double.route("POST", f"/slots/{slot}", lambda ex: ex.send_json(501, NO_SLOT_SAVE))
        yield double


async def test_a_server_that_cannot_save_slots_is_asked_once_and_the_requests_go_on(server_without_slot_saving):
    provider = LlamaCppServerProvider(server_without_slot_saving.root_url)
    request = ChatRequest(messages=[Message(role="user", content="ARTICLE: …")], max_tokens=1)
    assert await provider.share_prefix(request) is False
    evaluated = server_without_slot_saving.requests_to("/v1/chat/completions")
    assert len(evaluated) == 1 and evaluated[0].body["id_slot"] == 0 and evaluated[0].body["max_tokens"] == 1
    assert len(server_without_slot_saving.requests_to("/slots/0")) == 1
    before = len(server_without_slot_saving.requests)
    assert await provider.share_prefix(request) is False  # remembered: not tried again
    assert len(server_without_slot_saving.requests) == before
    await provider.aclose()


async def test_a_prefix_longer_than_a_slot_is_not_evaluated_for_nothing(server_without_slot_saving):
    # the requests will each cut such an article at their own length, so no two share it: the long evaluation
    # would be wasted (and llama-server logs its context error on the user's terminal)
    double = server_without_slot_saving
    double.route("GET", "/props", lambda ex: ex.send_json(200, {"total_slots": 2, "n_ctx": 200}))
    double.route(
        "POST", "/tokenize", lambda ex: ex.send_json(200, {"tokens": list(range(len(ex.body["content"]) // 4))})
    )
    settings = {"llamacpp_enabled": True, "llamacpp_server_url": double.root_url, "llm_provider": "llamacpp"}
    async with Gateway(load_settings({**settings, "embedded": False}, env_file=None)) as gateway:
        article = {
            "role": "user",
            "content": "ARTICLE: " + "rundll32 lanternsvc.dll,DllRegister " * 40,
            "truncatable": True,
        }
        assert await gateway.share_prefix([article], task="extract") is False
        assert double.requests_to("/v1/chat/completions") == []  # nothing evaluated
        short = {"role": "user", "content": "ARTICLE: rundll32", "truncatable": True}
        assert await gateway.share_prefix([short], task="extract") is False  # tried: this server cannot copy
        assert len(double.requests_to("/v1/chat/completions")) == 1
