"""Streaming: deltas, then one final result with usage and timings; errors before and after the first delta."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ctistudio.llm import Gateway, ProviderUnavailable
from ctistudio.testing.lmstudio_double import LMStudioDouble, Reply

CHAT = "/v1/chat/completions"


async def test_deltas_then_a_final_result_with_usage_and_timings(start_double, settings_for):
    double = start_double(LMStudioDouble, latency=0.2, token_latency=0.01)
    double.reply("The actor used certutil to download a payload.")  # 47 chars → 12 tokens
    async with Gateway(settings_for(double)) as gateway:
        deltas = [d async for d in gateway.stream("What happened?")]
    *pieces, last = deltas
    assert all(not d.done for d in pieces) and last.done and last.result is not None
    assert len(pieces) > 3  # really streamed, not one blob
    result = last.result
    assert "".join(d.text for d in pieces) == result.text == "The actor used certutil to download a payload."
    assert result.usage.prompt_tokens == 4 + 4  # ceil(14/4) + 4, the double's documented tokenizer
    assert result.usage.completion_tokens == 12
    t = result.timings
    assert t.time_to_first_token is not None and t.time_to_first_token >= 0.2
    assert t.total >= t.time_to_first_token + 0.1  # 11 more tokens at 10 ms
    assert t.generation_tokens_per_s is not None and 0 < t.generation_tokens_per_s < 110
    assert result.url == double.url + "/chat/completions" and result.provider == "lmstudio"


async def test_think_blocks_never_reach_the_stream(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply("<think>The rubric says... maybe 7?</think>\n\nScore: 8")
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        deltas = [d async for d in gateway.stream("score it")]
    assert "".join(d.text for d in deltas) == "Score: 8"
    result = deltas[-1].result
    assert result is not None and result.text == "Score: 8"
    assert result.reasoning == "The rubric says... maybe 7?"


async def test_reasoning_content_is_kept_apart(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply(Reply(content="Score: 3", reasoning="Thinking about 9 first."))
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        streamed = [d async for d in gateway.stream("score it")]
        lmstudio_double.reply(Reply(content="", reasoning="Only thoughts: 5"))
        whole = await gateway.chat("score it")
    assert "".join(d.text for d in streamed) == "Score: 3"
    assert streamed[-1].result and streamed[-1].result.reasoning == "Thinking about 9 first."
    assert whole.text == "Only thoughts: 5"  # reasoning_content used only because there was no content


async def test_drop_before_the_first_delta_is_retried(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.drop_connection(after_chunks=0)
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        deltas = [d async for d in gateway.stream("hi")]
    assert deltas[-1].result and deltas[-1].result.attempts == 2
    assert len(lmstudio_double.requests_to(CHAT)) == 2


async def test_drop_mid_stream_reaches_the_caller_after_the_text_shown(lmstudio_double, settings_for):
    lmstudio_double.reply("a fairly long answer that the server will not finish sending")
    lmstudio_double.drop_connection(after_chunks=3)
    shown: list[str] = []
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        with pytest.raises(ProviderUnavailable, match="dropped"):
            async for delta in gateway.stream("hi"):
                shown.append(delta.text)
        assert gateway.router().endpoint_state("lmstudio").in_flight == 0
    assert "".join(shown) == "a fairly lon"  # 3 chunks of 4 characters, then the cut (no retry)
    assert len(lmstudio_double.requests_to(CHAT)) == 1


async def test_stopping_early_releases_the_slot_and_the_connection(start_double, settings_for):
    double = start_double(LMStudioDouble, token_latency=0.02)
    double.reply("x" * 400, "y" * 400)
    async with Gateway(settings_for(double, max_in_flight=1)) as gateway:
        state = gateway.router().endpoint_state("lmstudio")
        async with contextlib.aclosing(gateway.stream("hi")) as deltas:
            async for _ in deltas:
                break
        assert state.in_flight == 0  # closed at once
        async for _ in gateway.stream("hi"):  # without aclosing: freed when the generator is collected
            break
        for _ in range(5):
            await asyncio.sleep(0)
        assert state.in_flight == 0
        assert (await asyncio.wait_for(gateway.chat("next"), 5)).text == "OK"  # the single slot is free
