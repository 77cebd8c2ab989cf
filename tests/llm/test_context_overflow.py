"""Context overflow end to end: fit before sending, re-budget once with the server's numbers, fall back to a
larger window — never a blind retry."""

from __future__ import annotations

import pytest

from ctistudio.llm import ContextOverflow, Gateway
from ctistudio.llm.providers.lmstudio import LMStudioProvider
from ctistudio.testing.lmstudio_double import LMStudioDouble

CHAT = "/v1/chat/completions"
MODEL = "qwen/qwen3-4b-2507"


def article(sentences: int) -> str:
    return " ".join(f"Step {i}: the actor ran rundll32.exe with a DLL from %TEMP%." for i in range(sentences))


def ranking_prompt(body: str, *, truncatable: bool = True) -> list[dict]:
    return [
        {"role": "system", "content": "Score the article's huntability from 1 to 10."},
        {"role": "user", "content": body, "truncatable": truncatable},
    ]


def lmstudio(double: LMStudioDouble, name: str = "lmstudio") -> LMStudioProvider:
    return LMStudioProvider(double.url, name=name, default_model=MODEL, fallback_hosts=[])


async def test_known_window_is_fitted_before_sending(start_double, settings_for):
    double = start_double(LMStudioDouble, models={MODEL: 4096})
    body = article(800)
    async with Gateway(settings_for(double)) as gateway:
        result = await gateway.chat(ranking_prompt(body), task="rank", max_tokens=300)
    (sent,) = double.requests_to(CHAT)
    assert sent.status == 200  # no overflow round trip
    content = sent.body["messages"][1]["content"]
    assert "characters of this text were cut to fit the model's 4,096-token context window" in content
    assert double.prompt_tokens(sent.body["messages"]) + sent.body["max_tokens"] <= 4096
    assert result.fit is not None and result.fit.truncated_chars > 0 and result.fit.context_length == 4096


async def test_server_reported_overflow_is_re_budgeted_once(start_double, settings_for):
    # No native API and no override: the client cannot know the 2,048 window until the server says it.
    double = start_double(LMStudioDouble, api_version="none", models={MODEL: 2048})
    async with Gateway(settings_for(double)) as gateway:
        result = await gateway.chat(ranking_prompt(article(400)), task="rank", max_tokens=200)
        again = await gateway.chat(ranking_prompt(article(400)), task="rank", max_tokens=200)
    first, second, third = double.requests_to(CHAT)
    assert first.status == 400 and second.status == 200 and third.status == 200  # learned: no 2nd overflow
    assert double.prompt_tokens(second.body["messages"]) + second.body["max_tokens"] <= 2048
    assert result.text == "OK" and result.fit is not None and result.fit.context_length == 2048
    assert again.fit is not None and again.fit.context_length == 2048


async def test_overflow_without_anything_to_cut_is_not_retried(start_double, settings_for):
    double = start_double(LMStudioDouble, api_version="none", models={MODEL: 2048})
    async with Gateway(settings_for(double)) as gateway:
        with pytest.raises(ContextOverflow) as info:
            await gateway.chat(ranking_prompt(article(400), truncatable=False), task="rank", max_tokens=200)
    assert len(double.requests_to(CHAT)) == 1  # never a blind retry
    error = info.value
    assert error.context_length == 2048 and error.prompt_tokens and error.prompt_tokens > 2048
    assert error.model == MODEL
    assert f"ctistudio llm load {MODEL} --context-length" in (error.fix or "")


async def test_overflow_in_a_stream_is_re_budgeted_too(start_double, settings_for):
    double = start_double(LMStudioDouble, api_version="none", models={MODEL: 2048})
    double.reply("first", "second")
    async with Gateway(settings_for(double)) as gateway:
        deltas = [d async for d in gateway.stream(ranking_prompt(article(400)), task="rank", max_tokens=100)]
    assert "".join(d.text for d in deltas) == "first"
    assert [r.status for r in double.requests_to(CHAT)] == [200, 200]  # first stream: 200 + error frame
    assert deltas[-1].done and deltas[-1].result and deltas[-1].result.fit
    assert deltas[-1].result.fit.context_length == 2048


async def test_server_counting_more_tokens_than_we_estimate_is_learned(start_double, settings_for):
    # chars_per_token=2: the server's tokenizer counts 1.5x our conservative 3-chars-per-token estimate.
    double = start_double(LMStudioDouble, chars_per_token=2, models={MODEL: 4096})
    async with Gateway(settings_for(double)) as gateway:
        await gateway.chat(ranking_prompt(article(400)), task="rank", max_tokens=200)
        await gateway.chat(ranking_prompt(article(400)), task="rank", max_tokens=200)
    statuses = [r.status for r in double.requests_to(CHAT)]
    assert statuses == [400, 200, 200]  # one overflow, then scaled counts fit first time


async def test_overflow_falls_back_to_a_provider_with_a_larger_window(start_double, settings_for):
    small = start_double(LMStudioDouble, api_version="none", models={MODEL: 2048})
    large = start_double(LMStudioDouble, models={MODEL: 32768})
    providers = {"small": lmstudio(small, "small"), "large": lmstudio(large, "large")}
    async with Gateway(settings_for(), providers=providers) as gateway:
        result = await gateway.chat(ranking_prompt(article(400), truncatable=False), task="rank")
    assert result.provider == "large"
    assert len(small.requests_to(CHAT)) == 1 and len(large.requests_to(CHAT)) == 1
    sent = large.requests_to(CHAT)[0].body["messages"][1]["content"]
    assert "were cut" not in sent  # the larger window took the whole article


async def test_known_small_window_skips_straight_to_the_larger_provider(start_double, settings_for):
    small = start_double(LMStudioDouble, models={MODEL: 2048})
    large = start_double(LMStudioDouble, models={MODEL: 32768})
    providers = {"small": lmstudio(small, "small"), "large": lmstudio(large, "large")}
    async with Gateway(settings_for(), providers=providers) as gateway:
        result = await gateway.chat(ranking_prompt(article(400), truncatable=False), task="rank")
    assert result.provider == "large"
    assert small.requests_to(CHAT) == []  # fitted before sending: the small one was never asked


async def test_env_override_gives_the_window_when_the_server_cannot(start_double, settings_for):
    double = start_double(LMStudioDouble, api_version="none", models={MODEL: 4096})
    settings = settings_for(double, context_lengths={"QWEN_QWEN3_4B_2507": 4096})
    async with Gateway(settings) as gateway:
        await gateway.chat(ranking_prompt(article(800)), task="rank", max_tokens=200)
    assert [r.status for r in double.requests_to(CHAT)] == [200]
