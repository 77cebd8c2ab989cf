"""The MLX provider's adapter logic, with a fake engine (mlx-lm runs only on Apple Silicon)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from ctistudio.config import load_settings
from ctistudio.llm import ContextOverflow, Gateway, ProviderUnavailable
from ctistudio.llm.providers import auto_chain
from ctistudio.llm.providers.mlx import GenerationStep, MLXProvider, is_apple_silicon
from ctistudio.llm.types import ChatRequest, Message


class FakeEngine:
    """Words are tokens; the chat template tags each message; answers are scripted."""

    def __init__(self, answer: str = "Hunt for certutil.", *, context_length: int = 4096, delay: float = 0.0):
        self.answer = answer
        self.context_length = context_length
        self.delay = delay
        self.loaded: list[str] = []
        self.prompts: list[str] = []
        self.settings: list[dict] = []

    def load(self, path: str) -> None:
        self.loaded.append(path)

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages) + "<|assistant|>"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompt: str, *, max_tokens: int, temperature: float, top_p: float, seed) -> Iterator:
        self.prompts.append(prompt)
        self.settings.append({"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed})
        words = self.answer.split(" ")
        for index, word in enumerate(words[:max_tokens]):
            if self.delay:
                time.sleep(self.delay)
            last = index == len(words[:max_tokens]) - 1
            yield GenerationStep(
                text=(" " if index else "") + word,
                prompt_tokens=self.count_tokens(prompt),
                prompt_tps=500.0,
                generation_tokens=index + 1,
                generation_tps=80.0,
                finish_reason=("stop" if len(words) <= max_tokens else "length") if last else None,
            )


class Verdict(BaseModel):
    huntable: bool


def gateway_with(engine: FakeEngine) -> Gateway:
    provider = MLXProvider("/models/qwen-mlx", engine=engine)
    return Gateway(load_settings({"embedded": False}, env_file=None), providers={"mlx": provider})


async def test_chat_uses_the_chat_template_and_reports_engine_figures():
    engine = FakeEngine("Hunt for certutil downloading payloads.")
    async with gateway_with(engine) as gateway:
        result = await gateway.chat("What to hunt?", system="Be brief.", max_tokens=50)
    assert result.text == "Hunt for certutil downloading payloads."
    assert engine.loaded == ["/models/qwen-mlx"]
    assert engine.prompts == ["<|system|>Be brief.\n<|user|>What to hunt?\n<|assistant|>"]
    assert engine.settings[0] == {"max_tokens": 50, "temperature": 0.0, "top_p": 0.9, "seed": 42}
    assert result.provider == "mlx" and result.model == "qwen-mlx"
    assert result.usage.prompt_tokens == 6 and result.usage.completion_tokens == 5  # words of the prompt
    assert result.timings.generation_tokens_per_s == 80.0 and result.timings.prompt_tokens_per_s == 500.0
    assert result.finish_reason == "stop"


async def test_structured_output_by_instruction_then_validated():
    engine = FakeEngine('{"huntable": true}')
    async with gateway_with(engine) as gateway:
        result = await gateway.chat("Is this huntable?", system="You rank articles.", output_type=Verdict)
    assert result.parsed == Verdict(huntable=True)
    system = engine.prompts[0].split("<|user|>")[0]
    assert system.startswith("<|system|>You rank articles.") and '"huntable"' in system and "JSON Schema" in system


async def test_overflow_is_detected_before_generating():
    engine = FakeEngine(context_length=20)
    provider = MLXProvider("/models/qwen-mlx", engine=engine)
    request = ChatRequest(messages=[Message(role="user", content="word " * 30)], max_tokens=5)
    with pytest.raises(ContextOverflow) as caught:
        await provider.complete(request)
    assert caught.value.prompt_tokens == 31 and caught.value.context_length == 20  # 30 words + the role tag
    assert engine.prompts == []


async def test_long_article_is_fitted_to_the_window_by_the_router():
    engine = FakeEngine("ok", context_length=400)
    async with gateway_with(engine) as gateway:
        result = await gateway.chat(
            [{"role": "user", "content": "Attackers used wmic. " * 500, "truncatable": True}], max_tokens=50
        )
    assert result.fit.truncated_chars > 0 and engine.count_tokens(engine.prompts[0]) <= 400


async def test_stop_sequences_cut_the_answer():
    engine = FakeEngine("first line END second line")
    async with gateway_with(engine) as gateway:
        result = await gateway.chat("x", stop=["END"])
    assert result.text == "first line" and result.finish_reason == "stop"


async def test_streaming_strips_thinking_and_keeps_the_loop_free(loop_ticker):
    engine = FakeEngine("<think> the article mentions wmic </think> Hunt wmic process call create.", delay=0.02)
    async with gateway_with(engine) as gateway:
        with loop_ticker:
            deltas = [d async for d in gateway.stream("What to hunt?")]
    text = "".join(d.text for d in deltas)
    assert text == "Hunt wmic process call create."
    assert "wmic" in deltas[-1].result.reasoning
    assert loop_ticker.ticks > 10  # ~0.2 s of generation ran in a worker thread while the loop kept ticking


@pytest.mark.skipif(is_apple_silicon(), reason="checks the message on machines without Apple Silicon")
async def test_elsewhere_health_says_why_in_one_line_and_auto_skips_it():
    provider = MLXProvider("/models/qwen-mlx")
    health = await provider.health()
    assert not health.ok and "\n" not in health.detail
    assert health.detail.startswith("MLX runs only on Apple Silicon")
    with pytest.raises(ProviderUnavailable, match="Apple Silicon"):
        await provider.complete(ChatRequest(messages=[Message(role="user", content="x")]))
    settings = load_settings({"mlx_enabled": True, "embedded": True}, env_file=None)
    assert "mlx" not in auto_chain(settings)
