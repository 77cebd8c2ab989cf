"""The Ollama provider against a real local HTTP server speaking Ollama's native API (OllamaDouble)."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel

from ctistudio.config import load_settings
from ctistudio.llm import Gateway, ModelNotLoaded, ProviderUnavailable
from ctistudio.llm.providers.ollama import OllamaProvider, context_for
from ctistudio.testing.ollama_double import OllamaDouble


class Verdict(BaseModel):
    huntable: bool
    score: int


@pytest.fixture
def ollama():
    with OllamaDouble(models={"qwen2.5-coder:1.5b": 32768, "small:1b": 8192}) as double:
        yield double


def gateway_for(double: OllamaDouble, **fields) -> Gateway:
    values = {"ollama_url": double.root_url, "ollama_enabled": True, "embedded": False, "llm_provider": "ollama"}
    return Gateway(load_settings({**values, **fields}, env_file=None))


async def test_chat_sends_native_options_and_reads_counts(ollama):
    ollama.reply("Look for certutil -urlcache.")
    async with gateway_for(ollama) as gateway:
        result = await gateway.chat("What should I hunt?", task="chat", max_tokens=64)
    assert result.text == "Look for certutil -urlcache." and result.provider == "ollama"
    body = ollama.requests_to("/api/chat")[-1].body
    assert body["model"] == "qwen2.5-coder:1.5b" and body["stream"] is False
    assert body["options"] == {"num_predict": 64, "num_ctx": 4096, "temperature": 0.0, "top_p": 0.9, "seed": 42}
    assert "format" not in body
    assert result.usage.prompt_tokens == math.ceil(len("What should I hunt?") / 4) + 4
    assert result.usage.completion_tokens == 7  # 28 characters, 4 per token
    assert result.timings.generation_tokens_per_s == pytest.approx(100.0)
    assert result.timings.prompt_tokens_per_s == pytest.approx(2000.0)
    assert result.url.endswith("/api/chat")


async def test_structured_output_sends_the_schema_as_format(ollama):
    ollama.reply('{"huntable": true, "score": 8}')
    async with gateway_for(ollama) as gateway:
        result = await gateway.chat("Rank this article.", task="rank", output_type=Verdict)
    assert result.parsed == Verdict(huntable=True, score=8)
    body = ollama.requests_to("/api/chat")[-1].body
    assert body["format"] == Verdict.model_json_schema()
    assert body["options"]["num_ctx"] == 8192  # ranking gets at least its minimum window


async def test_num_ctx_follows_the_prompt_so_nothing_is_cut(ollama):
    article = "PowerShell downloads a payload with certutil. " * 2000  # ~23,000 tokens in the double
    async with gateway_for(ollama) as gateway:
        await gateway.chat([{"role": "user", "content": article, "truncatable": True}], task="extract", max_tokens=100)
    assert ollama.requests_to("/api/chat")[-1].body["options"]["num_ctx"] == 32768
    assert ollama.truncated == []  # the double cuts silently, as Ollama does, when num_ctx is too small
    async with gateway_for(ollama) as gateway:
        models = {m.id: m for m in await gateway.models()}
    assert models["qwen2.5-coder:1.5b"].loaded and models["qwen2.5-coder:1.5b"].context_length == 32768


async def test_prompt_beyond_the_trained_window_is_fitted_not_silently_cut(ollama):
    article = "Attackers used rundll32 to load a DLL from a share. " * 2000
    async with gateway_for(ollama, ollama_model="small:1b") as gateway:
        result = await gateway.chat(
            [{"role": "user", "content": article, "truncatable": True}], task="extract", max_tokens=100
        )
    sent = ollama.requests_to("/api/chat")[-1].body
    assert sent["options"]["num_ctx"] == 8192  # capped at the model's trained window from /api/show
    assert result.fit.truncated_chars > 0 and "characters of this text were cut" in sent["messages"][0]["content"]
    assert ollama.truncated == []


def test_context_sizes():
    assert context_for(100, task="chat", trained=None) == 4096
    assert context_for(100, task="rank", trained=32768) == 8192
    assert context_for(9000, task="chat", trained=32768) == 16384
    assert context_for(50_000, task="chat", trained=32768) == 32768


async def test_streaming_ndjson(ollama):
    ollama.reply(" Hunt for rundll32 loading from shares.")
    async with gateway_for(ollama) as gateway:
        deltas = [d async for d in gateway.stream("What to hunt?", max_tokens=50)]
    text = "".join(d.text for d in deltas)
    assert text == "Hunt for rundll32 loading from shares."
    assert len(deltas) > 5  # one NDJSON line per token, not one lump
    final = deltas[-1]
    assert final.done and final.result.usage.completion_tokens == 10
    assert final.result.timings.time_to_first_token is not None
    assert ollama.requests_to("/api/chat")[-1].body["stream"] is True


async def test_thinking_is_kept_apart(ollama):
    from ctistudio.testing.http_double import Reply

    ollama.reply(Reply(content="Answer.", reasoning="Let me think about the article."))
    async with gateway_for(ollama) as gateway:
        result = await gateway.chat("Q?")
    assert result.text == "Answer." and "think about" in result.reasoning


async def test_stream_dropped_midway(ollama):
    ollama.drop_connection(after_chunks=3)
    async with gateway_for(ollama, retries=0) as gateway:
        with pytest.raises(ProviderUnavailable):
            async for _ in gateway.stream("x", max_tokens=20):
                pass


async def test_model_not_pulled(ollama):
    async with gateway_for(ollama, ollama_model="llama3.3:70b") as gateway:
        with pytest.raises(ModelNotLoaded) as caught:
            await gateway.chat("hi")
    assert "try pulling it first" in str(caught.value) and "ollama pull" in caught.value.fix


async def test_embeddings(ollama):
    async with gateway_for(ollama, embedding_provider="ollama") as gateway:
        result = await gateway.embed(["lateral movement with psexec", "psexec with lateral movement"])
    assert result.provider == "ollama" and result.model == "nomic-embed-text" and result.dimensions == 768
    assert ollama.requests_to("/api/embed")[-1].body == {
        "model": "nomic-embed-text",
        "input": ["lateral movement with psexec", "psexec with lateral movement"],
    }
    a, b = result.vectors
    assert sum(x * y for x, y in zip(a, b, strict=True)) == pytest.approx(1.0)  # same words, same bag


async def test_models_context_and_health(ollama):
    provider = OllamaProvider(ollama.root_url, default_model="qwen2.5-coder:1.5b")
    assert await provider.context_length("small:1b") == 8192
    names = {m.id: m for m in await provider.models()}
    assert names["nomic-embed-text"].type == "embedding" and names["small:1b"].quantization == "Q4_K_M"
    health = await provider.health()
    assert health.ok and "0.12.6" in health.detail
    await provider.aclose()


async def test_health_when_ollama_is_not_running():
    provider = OllamaProvider("http://127.0.0.1:9")
    health = await provider.health()
    assert not health.ok and "ollama serve" in health.detail
