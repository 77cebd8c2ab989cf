"""LM Studio's own facts: model state and REAL loaded context (v1, v0, env override), loading without
stacking, permission keys, embeddings."""

from __future__ import annotations

import pytest

from ctistudio.llm import AuthenticationFailed, Gateway, ModelNotLoaded
from ctistudio.llm.errors import BadRequest
from ctistudio.llm.providers.lmstudio import LMStudioProvider
from ctistudio.testing.lmstudio_double import LMStudioDouble

MODEL = "qwen/qwen3-4b-2507"


def provider_for(gateway: Gateway) -> LMStudioProvider:
    provider = gateway.provider("lmstudio")
    assert isinstance(provider, LMStudioProvider)
    return provider


async def test_v1_model_state_with_the_loaded_context(start_double, settings_for):
    double = start_double(LMStudioDouble, models={MODEL: 8192, "big/model": None})
    async with Gateway(settings_for(double)) as gateway:
        models = {m.id: m for m in await gateway.models("lmstudio")}
        window = await provider_for(gateway).context_length(MODEL)
    assert models[MODEL].loaded and models[MODEL].context_length == 8192
    assert models[MODEL].max_context_length == 131072 and models[MODEL].quantization == "Q4_K_M"
    assert models["big/model"].loaded is False and models["big/model"].context_length is None
    assert models["text-embedding-nomic-embed-text-v1.5"].type == "embedding"
    assert window == 8192
    assert double.requests_to("/api/v0/models") == []


async def test_v0_fallback_on_an_older_lm_studio(start_double, settings_for):
    double = start_double(LMStudioDouble, api_version="v0", models={MODEL: 6144})
    async with Gateway(settings_for(double)) as gateway:
        models = {m.id: m for m in await gateway.models("lmstudio")}
        window = await provider_for(gateway).context_length(MODEL)
    assert models[MODEL].loaded and window == 6144
    assert models["text-embedding-nomic-embed-text-v1.5"].type == "embedding"  # v0 says "embeddings"
    assert double.requests_to("/api/v1/models")[0].status == 200  # LM Studio's "Unexpected endpoint" quirk


async def test_env_override_when_no_native_api(start_double, settings_for):
    double = start_double(LMStudioDouble, api_version="none", models={MODEL: 4096})
    settings = settings_for(double, context_lengths={"QWEN_QWEN3_4B_2507": 12288}, lmstudio_max_context=8192)
    async with Gateway(settings) as gateway:
        provider = provider_for(gateway)
        assert await provider.context_length(MODEL) == 12288  # LMSTUDIO_CONTEXT_LENGTH_<slug>
        assert await provider.context_length("other/model") == 8192  # LMSTUDIO_MAX_CONTEXT
        models = await provider.models()
    assert {m.id for m in models} >= {MODEL}  # from /v1/models
    assert all(m.loaded is None for m in models)


async def test_server_state_wins_over_the_env_override(start_double, settings_for):
    double = start_double(LMStudioDouble, models={MODEL: 4096})
    async with Gateway(settings_for(double, context_lengths={"QWEN_QWEN3_4B_2507": 32768})) as gateway:
        assert await provider_for(gateway).context_length(MODEL) == 4096


async def test_load_reuses_an_instance_with_enough_context(start_double, settings_for):
    double = start_double(LMStudioDouble, models={MODEL: 16384})
    async with Gateway(settings_for(double)) as gateway:
        result = await provider_for(gateway).load(MODEL, 8192)
    assert result.reused and result.instance_id == MODEL and result.context_length == 16384
    assert double.requests_to("/api/v1/models/load") == []
    assert list(double.models[MODEL].instances) == [MODEL]


async def test_load_with_more_context_replaces_the_instance_instead_of_stacking(start_double, settings_for):
    double = start_double(LMStudioDouble, models={MODEL: 4096})
    async with Gateway(settings_for(double)) as gateway:
        provider = provider_for(gateway)
        result = await provider.load(MODEL, 16384)
        again = await provider.load(MODEL, 16384)
    assert not result.reused and result.unloaded == [MODEL] and result.context_length == 16384
    assert again.reused
    assert double.models[MODEL].instances == {MODEL: 16384}  # one instance, no "<key>:2"
    assert len(double.requests_to("/api/v1/models/load")) == 1


async def test_load_a_downloaded_model(start_double, settings_for):
    double = start_double(LMStudioDouble, models={"big/model": None}, load_time=0.05)
    async with Gateway(settings_for(double)) as gateway:
        result = await provider_for(gateway).load("big/model", 32768)
    assert result.instance_id == "big/model" and result.context_length == 32768 and result.unloaded == []
    assert result.load_time_seconds is not None and result.load_time_seconds >= 0.05
    assert double.requests_to("/api/v1/models/load")[0].body == {
        "model": "big/model",
        "config": {"context_length": 32768},
    }


async def test_load_an_unknown_model_names_the_known_ones(lmstudio_double: LMStudioDouble, settings_for):
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        with pytest.raises(ModelNotLoaded) as info:
            await provider_for(gateway).load("no/such-model", 8192)
    assert MODEL in info.value.message and "lms get no/such-model" in (info.value.fix or "")


async def test_load_on_an_old_server_without_lms_says_what_to_do(start_double, settings_for, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no `lms` CLI on this machine
    double = start_double(LMStudioDouble, api_version="v0", models={MODEL: 4096})
    async with Gateway(settings_for(double)) as gateway:
        with pytest.raises(BadRequest) as info:
            await provider_for(gateway).load(MODEL, 16384)
    assert f"lms load {MODEL} --context-length 16384" in (info.value.fix or "")


async def test_permission_key_is_sent_as_bearer(start_double, settings_for):
    double = start_double(LMStudioDouble, api_key="sk-lm-abc")
    async with Gateway(settings_for(double, lmstudio_api_key="sk-lm-abc")) as gateway:
        assert (await gateway.chat("hi")).text == "OK"
    assert all(r.headers["authorization"] == "Bearer sk-lm-abc" for r in double.requests)


async def test_missing_permission_key_is_explained(start_double, settings_for):
    double = start_double(LMStudioDouble, api_key="sk-lm-abc")
    async with Gateway(settings_for(double)) as gateway:
        with pytest.raises(AuthenticationFailed) as info:
            await gateway.chat("hi")
    assert "An LM Studio API token is required" in info.value.message
    assert "LMSTUDIO_API_KEY" in (info.value.fix or "")
    assert len(double.requests_to("/v1/chat/completions")) == 1  # a 401 is not retried


async def test_embeddings_go_to_the_embedding_url(start_double, settings_for):
    chat = start_double(LMStudioDouble, embeddings={})
    embed = start_double(LMStudioDouble)
    settings = settings_for(chat, lmstudio_embedding_url=embed.url + "/embeddings", embedding_provider="lmstudio")
    async with Gateway(settings) as gateway:
        result = await gateway.embed(["powershell -enc", "certutil -urlcache"], provider="lmstudio")
    assert result.dimensions == 64 and len(result.vectors) == 2
    assert result.model == "text-embedding-nomic-embed-text-v1.5"
    assert embed.requests_to("/v1/embeddings")[0].body["input"] == ["powershell -enc", "certutil -urlcache"]
    assert chat.requests_to("/v1/embeddings") == []
