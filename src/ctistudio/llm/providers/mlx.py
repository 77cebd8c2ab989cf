"""MLX (mlx-lm) on Apple Silicon: ``MLX_ENABLED=true``, ``MLX_MODEL_PATH`` (a folder or a catalog name).

MLX runs only on Macs with Apple Silicon. Elsewhere the provider's health says so in one line and the
``auto`` chain skips it. The engine boundary is thin (:class:`MLXEngine`: load, chat template, token count,
a token stream); everything else — prompt building, structured output by instruction (mlx-lm has no
grammar sampling: the gateway validates and repairs), the context check before generating, stop
sequences, think stripping, usage and timings — is adapter logic in :class:`MLXProvider`, unit-tested
with a fake engine.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ctistudio.llm.context import window_for
from ctistudio.llm.errors import ContextOverflow, ModelNotLoaded, PlatformUnsupported
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers.threaded import AnswerStream, iterate_in_thread
from ctistudio.llm.types import ChatRequest, ChatResult, Health, ModelInfo, StreamDelta, Timings, Usage


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def platform_note() -> str:
    return f"MLX runs only on Apple Silicon (macOS arm64); this machine is {platform.system()} {platform.machine()}"


PLATFORM_FIX = (
    "On a Mac with Apple Silicon: `pip install mlx-lm` and set MLX_MODEL_PATH. On this machine: unset "
    "MLX_ENABLED and use llama.cpp, LM Studio or the embedded engine."
)


def platform_error() -> PlatformUnsupported:
    return PlatformUnsupported(platform_note(), fix=PLATFORM_FIX, provider="mlx")


@dataclass
class GenerationStep:
    """One step of an engine's token stream (mlx-lm's GenerationResponse, reduced to what we use)."""

    text: str
    prompt_tokens: int = 0
    prompt_tps: float | None = None
    generation_tokens: int = 0
    generation_tps: float | None = None
    finish_reason: str | None = None


class MLXEngine(Protocol):
    """What the provider needs from an engine; :class:`MlxLmEngine` is the real one."""

    context_length: int | None

    def load(self, path: str) -> None: ...
    def chat_prompt(self, messages: list[dict[str, str]]) -> str: ...
    def count_tokens(self, text: str) -> int: ...
    def generate(
        self, prompt: str, *, max_tokens: int, temperature: float, top_p: float, seed: int | None
    ) -> Iterator[GenerationStep]: ...


class MlxLmEngine:
    """mlx-lm behind :class:`MLXEngine` (imported only when used, on Apple Silicon)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.context_length: int | None = None

    def load(self, path: str) -> None:
        import mlx_lm

        self.model, self.tokenizer = mlx_lm.load(path)
        config = Path(path, "config.json")
        if config.is_file():
            self.context_length = json.loads(config.read_text()).get("max_position_embeddings")

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def generate(
        self, prompt: str, *, max_tokens: int, temperature: float, top_p: float, seed: int | None
    ) -> Iterator[GenerationStep]:
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.sample_utils import make_sampler

        if seed is not None:
            mx.random.seed(seed)
        sampler = make_sampler(temp=temperature, top_p=top_p)
        for step in mlx_lm.stream_generate(self.model, self.tokenizer, prompt, max_tokens=max_tokens, sampler=sampler):
            yield GenerationStep(
                text=step.text,
                prompt_tokens=step.prompt_tokens,
                prompt_tps=step.prompt_tps,
                generation_tokens=step.generation_tokens,
                generation_tps=step.generation_tps,
                finish_reason=step.finish_reason,
            )


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Answer with one JSON object and nothing else (no prose, no code fence). "
        f"It must match this JSON Schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )


class MLXProvider(Provider):
    """An MLX model in this process. ``engine`` defaults to mlx-lm; tests pass a fake."""

    name = "mlx"
    in_process = True

    def context_fix(self, model: str, size: int) -> str:
        return f"Use an MLX model with a window of at least {size:,} tokens (MLX_MODEL_PATH), or shorten the input."

    def __init__(self, model_path: str, *, engine: MLXEngine | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("default_model", Path(model_path).name)
        kwargs["max_in_flight"] = 1
        super().__init__(**kwargs)
        self.model_path = model_path
        self.engine = engine
        self._loaded = False
        self._lock = threading.Lock()  # one generation at a time per model
        self._load_lock = threading.Lock()  # one load, whichever thread asks first

    @property
    def endpoint(self) -> str:
        return f"mlx:{self.model_path}"

    def _engine(self) -> MLXEngine:
        with self._load_lock:
            return self._load()

    def _load(self) -> MLXEngine:
        if self.engine is None:
            if not is_apple_silicon():
                raise platform_error()
            self.engine = MlxLmEngine()
        if not self._loaded:
            try:
                self.engine.load(self.model_path)
            except (OSError, ValueError, ImportError) as exc:
                raise ModelNotLoaded(
                    f"mlx: cannot load {self.model_path}: {exc}",
                    fix="Set MLX_MODEL_PATH to an MLX model folder (`ctistudio models install "
                    "qwen2.5-coder-0.5b-instruct-mlx-4bit`) and install mlx-lm (`pip install mlx-lm`).",
                    provider=self.name,
                ) from exc
            self._loaded = True
        return self.engine

    def prompt_for(self, engine: MLXEngine, request: ChatRequest) -> str:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.response_schema is not None:
            instruction = schema_instruction(request.response_schema)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
            else:
                messages.insert(0, {"role": "system", "content": instruction})
        return engine.chat_prompt(messages)

    def check_fits(self, engine: MLXEngine, prompt: str, request: ChatRequest) -> int:
        """Prompt tokens; raises :class:`ContextOverflow` when prompt + answer exceed the model's window."""
        tokens = engine.count_tokens(prompt)
        window = self.context_override(request.model or "") or engine.context_length
        if window and tokens + request.max_tokens > window:
            raise ContextOverflow(
                f"mlx: the prompt needs {tokens:,} tokens plus {request.max_tokens:,} for the answer, "
                f"but the model's window is {window:,}",
                prompt_tokens=tokens,
                context_length=window,
                model=request.model,
                provider=self.name,
                fix=self.context_fix(request.model or "MODEL", window_for(tokens + request.max_tokens, request.task)),
            )
        return tokens

    def _steps(self, request: ChatRequest) -> Iterator[GenerationStep]:
        """Runs in the worker thread: load, check the window, generate until done or a stop sequence."""
        engine = self._engine()
        prompt = self.prompt_for(engine, request)
        self.check_fits(engine, prompt, request)
        text = ""
        for step in engine.generate(
            prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature if request.temperature is not None else 0.0,
            top_p=request.top_p if request.top_p is not None else 1.0,
            seed=request.seed,
        ):
            text += step.text
            cut = _first_stop(text, request.stop or [])
            if cut is not None:
                keep = cut - (len(text) - len(step.text))
                yield GenerationStep(**{**step.__dict__, "text": step.text[: max(keep, 0)], "finish_reason": "stop"})
                return
            yield step

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        collected = AnswerStream()
        last: GenerationStep | None = None
        async for step in iterate_in_thread(lambda: self._steps(request), lock=self._lock, name="mlx"):
            last = step
            visible = collected.feed(step.text)
            if visible:
                yield StreamDelta(text=visible)
        tail = collected.flush()
        if tail:
            yield StreamDelta(text=tail)
        yield StreamDelta(done=True, result=self._result(request, collected, last))

    async def complete(self, request: ChatRequest) -> ChatResult:
        result: ChatResult | None = None
        async for delta in self.stream(request):
            result = delta.result or result
        assert result is not None
        return result

    def _result(self, request: ChatRequest, collected: AnswerStream, last: GenerationStep | None) -> ChatResult:
        text, reasoning = collected.answer()
        return ChatResult(
            text=text,
            reasoning=reasoning,
            finish_reason=(last.finish_reason if last else None) or "stop",
            usage=Usage(
                prompt_tokens=last.prompt_tokens if last else None,
                completion_tokens=last.generation_tokens if last else 0,
            ),
            timings=Timings(
                time_to_first_token=collected.first,
                total=collected.elapsed,
                prompt_tokens_per_s=last.prompt_tps if last else None,
                generation_tokens_per_s=last.generation_tps if last else None,
            ),
            provider=self.name,
            model=request.model or self.default_model or "",
            url=f"file://{self.model_path}",
        )

    # -- facts -------------------------------------------------------------------------------------
    async def count_tokens(self, text: str, model: str | None = None) -> int:
        if self.engine is None and not is_apple_silicon():
            return await super().count_tokens(text, model)
        engine = await asyncio.to_thread(self._engine)  # the first call loads the model: not on the loop
        return engine.count_tokens(text)

    async def context_length(self, model: str) -> int | None:
        if self.context_override(model):
            return self.context_override(model)
        if self.engine is None and not is_apple_silicon():
            return None
        return (await asyncio.to_thread(self._engine)).context_length

    async def models(self) -> list[ModelInfo]:
        if self.engine is None and not is_apple_silicon():
            raise platform_error()
        return [
            ModelInfo(
                id=self.default_model or self.model_path,
                provider=self.name,
                loaded=self._loaded,
                context_length=self.engine.context_length if self.engine else None,
                format="mlx",
                type="llm",
            )
        ]

    def _model_present(self) -> bool:
        return Path(self.model_path).exists()

    async def health(self) -> Health:
        if self.engine is None and not is_apple_silicon():
            return Health(provider=self.name, ok=False, detail=platform_note(), fix=PLATFORM_FIX)
        if self.engine is None and not self._model_present():
            return Health(provider=self.name, ok=False, detail=f"no MLX model at {self.model_path}")
        return Health(provider=self.name, ok=True, detail=f"in-process ({Path(self.model_path).name})")


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None
