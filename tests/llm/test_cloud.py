"""OpenAI and Anthropic at the HTTP level, against local doubles (OPENAI_BASE_URL / ANTHROPIC_BASE_URL)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from ctistudio.config import load_settings
from ctistudio.llm import AuthenticationFailed, ContextOverflow, Gateway, RateLimited
from ctistudio.testing.cloud_doubles import AnthropicDouble, OpenAIDouble

OPENAI_CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


class Verdict(BaseModel):
    huntable: bool


def cloud_settings(**fields):
    return load_settings({"embedded": False, "lmstudio_enabled": False, **fields}, env_file=None)


async def test_openai_chat_and_determinism(openai_double: OpenAIDouble):
    openai_double.reply("hello from the cloud")
    async with Gateway(cloud_settings()) as gateway:
        assert gateway.chain_names() == ["openai"]
        result = await gateway.chat("hi")
    assert result.text == "hello from the cloud" and result.provider == "openai" and result.model == "gpt-4o-mini"
    (sent,) = openai_double.requests_to(OPENAI_CHAT)
    assert sent.headers["authorization"] == "Bearer sk-test-double"
    assert (sent.body["temperature"], sent.body["top_p"], sent.body["seed"]) == (0.0, 0.9, 42)


async def test_openai_structured_output_uses_json_schema(openai_double: OpenAIDouble):
    openai_double.reply({"huntable": True})
    async with Gateway(cloud_settings()) as gateway:
        result = await gateway.chat("verdict?", output_type=Verdict)
    assert result.parsed == Verdict(huntable=True)
    fmt = openai_double.requests_to(OPENAI_CHAT)[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is False


async def test_openai_reasoning_models_get_their_parameters(openai_double: OpenAIDouble):
    async with Gateway(cloud_settings(openai_model="o4-mini")) as gateway:
        result = await gateway.chat("hi", max_tokens=50)
    body = openai_double.requests_to(OPENAI_CHAT)[0].body
    assert result.text == "OK"
    assert "temperature" not in body and "top_p" not in body and body["max_completion_tokens"] == 50


async def test_openai_wrong_key(openai_double: OpenAIDouble):
    async with Gateway(cloud_settings(openai_api_key="sk-wrong-key-1234")) as gateway:
        with pytest.raises(AuthenticationFailed) as info:
            await gateway.chat("hi")
    assert "Incorrect API key provided" in info.value.message and info.value.status_code == 401
    assert "OPENAI_API_KEY" in (info.value.fix or "")


async def test_openai_context_length_exceeded(start_double, monkeypatch):
    double = start_double(OpenAIDouble, models={"gpt-4o-mini": 1000})
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    async with Gateway(cloud_settings()) as gateway:
        with pytest.raises(ContextOverflow) as info:
            await gateway.chat("word " * 2000)
    error = info.value
    assert (error.prompt_tokens, error.context_length) == (2504, 1000)
    assert error.body and "context_length_exceeded" in error.body
    assert len(double.requests_to(OPENAI_CHAT)) == 1


async def test_openai_429_retry_after(openai_double: OpenAIDouble):
    openai_double.rate_limit(retry_after=0)
    async with Gateway(cloud_settings()) as gateway:
        result = await gateway.chat("hi")
    assert result.attempts == 2


async def test_openai_streaming_and_embeddings(openai_double: OpenAIDouble):
    openai_double.reply("streamed words")
    async with Gateway(cloud_settings()) as gateway:
        deltas = [d async for d in gateway.stream("hi")]
        vectors = await gateway.embed(["a", "b"], provider="openai")
    assert "".join(d.text for d in deltas) == "streamed words"
    assert deltas[-1].result and deltas[-1].result.usage.completion_tokens == 4
    assert vectors.model == "text-embedding-3-small" and len(vectors.vectors) == 2


async def test_anthropic_message_shape(anthropic_double: AnthropicDouble):
    anthropic_double.reply("Claude says hi")
    async with Gateway(cloud_settings()) as gateway:
        assert gateway.chain_names() == ["anthropic"]
        result = await gateway.chat("hi", system="You are terse.", temperature=1.7, max_tokens=64)
    assert result.text == "Claude says hi" and result.usage.prompt_tokens == 1 + 4 + 4
    body = anthropic_double.requests_to(MESSAGES)[0].body
    assert body["system"] == "You are terse."  # top-level, never a message
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["temperature"] == 1.0 and body["max_tokens"] == 64 and "seed" not in body


async def test_anthropic_529_overloaded_is_retried_then_raised(anthropic_double: AnthropicDouble):
    anthropic_double.overloaded(times=1)
    async with Gateway(cloud_settings()) as gateway:
        assert (await gateway.chat("hi")).attempts == 2
        anthropic_double.overloaded(times=10)
        with pytest.raises(RateLimited) as info:
            await gateway.chat("hi")
    assert info.value.status_code == 529 and "Overloaded" in info.value.message


async def test_anthropic_prompt_too_long(start_double, monkeypatch):
    double = start_double(AnthropicDouble, models={"claude-haiku-4-5": 500})
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    async with Gateway(cloud_settings()) as gateway:
        with pytest.raises(ContextOverflow) as info:
            await gateway.chat("x" * 4000)
    assert (info.value.prompt_tokens, info.value.context_length) == (1004, 500)


async def test_anthropic_streaming_and_structured(anthropic_double: AnthropicDouble):
    anthropic_double.reply("a streamed answer", '{"huntable": false}')
    async with Gateway(cloud_settings()) as gateway:
        deltas = [d async for d in gateway.stream("hi")]
        verdict = await gateway.chat("verdict?", output_type=Verdict)
    assert "".join(d.text for d in deltas) == "a streamed answer"
    final = deltas[-1].result
    assert final and final.usage.completion_tokens == 5 and final.timings.time_to_first_token is not None
    assert verdict.parsed == Verdict(huntable=False)
    assert "JSON Schema" in anthropic_double.requests_to(MESSAGES)[-1].body["system"]


async def test_anthropic_wrong_key(anthropic_double: AnthropicDouble):
    async with Gateway(cloud_settings(anthropic_api_key="nope")) as gateway:
        with pytest.raises(AuthenticationFailed) as info:
            await gateway.chat("hi")
    assert "invalid x-api-key" in info.value.message and "ANTHROPIC_API_KEY" in (info.value.fix or "")
