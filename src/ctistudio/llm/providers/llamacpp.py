"""llama.cpp in this process (llama-cpp-python): no server at all, one model loaded per process.

``LLAMACPP_ENABLED=true`` with ``LLAMACPP_MODEL_PATH`` (a GGUF file, or a catalog name such as
``qwen2.5-coder-0.5b-instruct-q4`` installed with ``ctistudio models install``) selects it; context size
``LLAMACPP_N_CTX``, threads ``LLAMACPP_THREADS``, GPU layers ``LLAMACPP_N_GPU_LAYERS`` (-1 = all, used
only where llama-cpp-python was built with a GPU backend). Install the engine with
``pip install 'ctistudio[llamacpp]'`` (it compiles llama.cpp: a few minutes).

llama-cpp-python calls block and its ``Llama`` object is not thread-safe: every call runs in a worker
thread under one lock, so the event loop keeps serving while the model works, and requests are answered
one at a time (``max_in_flight`` 1). Structured output uses its ``{"type": "json_object", "schema"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from ctistudio.llm.errors import BadOutput, BadRequest, ContextOverflow, ModelNotLoaded, ProviderUnavailable
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers.threaded import AnswerStream, iterate_in_thread
from ctistudio.llm.reasoning import choose_answer
from ctistudio.llm.types import ChatRequest, ChatResult, Health, ModelInfo, StreamDelta, Timings, Usage

_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)", re.I)


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ProviderUnavailable(
            "the in-process llama.cpp engine needs llama-cpp-python, which is not installed",
            fix="pip install 'ctistudio[llamacpp]' (builds llama.cpp, a few minutes), or use the llama.cpp "
            "server provider (unset LLAMACPP_MODEL_PATH, set LLAMACPP_SERVER_URL).",
            provider="llamacpp",
        ) from exc
    return llama_cpp


class LoadedModel:
    """The one ``llama_cpp.Llama`` of this process, with the lock that serialises calls into it."""

    _current: LoadedModel | None = None
    _switch = threading.Lock()

    def __init__(self, path: Path, *, n_ctx: int, threads: int | None, n_gpu_layers: int, seed: int) -> None:
        llama_cpp = _llama_cpp()
        self.key = (str(path), n_ctx, threads, n_gpu_layers)
        gpu_layers = n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
        started = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers,
                seed=seed,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
            raise ModelNotLoaded(
                f"llamacpp: cannot load {path}: {exc}",
                fix="Check LLAMACPP_MODEL_PATH points at a complete GGUF file (`ctistudio models path NAME`).",
                provider="llamacpp",
            ) from exc
        self.load_seconds = time.perf_counter() - started
        self.lock = threading.Lock()
        self.llama_cpp = llama_cpp

    @classmethod
    def get(cls, path: Path, *, n_ctx: int, threads: int | None, n_gpu_layers: int, seed: int) -> LoadedModel:
        """The loaded model for these settings; loading another one first releases the current one."""
        with cls._switch:
            current = cls._current
            if current is not None and current.key == (str(path), n_ctx, threads, n_gpu_layers):
                return current
            if current is not None:
                with current.lock:
                    current.llm.close()
                cls._current = None
            cls._current = cls(path, n_ctx=n_ctx, threads=threads, n_gpu_layers=n_gpu_layers, seed=seed)
            return cls._current

    def perf(self) -> tuple[float, int, float, int] | None:
        """(prompt ms, prompt tokens, generation ms, generated tokens) of the last call, when available."""
        try:
            data = self.llama_cpp.llama_perf_context(self.llm.ctx)
            return data.t_p_eval_ms, data.n_p_eval, data.t_eval_ms, data.n_eval
        except (AttributeError, TypeError):
            return None

    def reset_perf(self) -> None:
        with contextlib.suppress(AttributeError, TypeError):
            self.llama_cpp.llama_perf_context_reset(self.llm.ctx)


def overflow_from(exc: ValueError, model: str) -> ContextOverflow | None:
    match = _OVERFLOW.search(str(exc))
    if not match:
        return None
    prompt, window = int(match.group(1)), int(match.group(2))
    return ContextOverflow(
        f"llamacpp: the prompt needs {prompt:,} tokens but the model is loaded with a {window:,}-token window",
        prompt_tokens=prompt,
        context_length=window,
        model=model,
        provider="llamacpp",
        fix=f"Raise LLAMACPP_N_CTX (now {window}) or shorten the input.",
    )


class LlamaCppProvider(Provider):
    """A GGUF model run by llama-cpp-python inside this process."""

    name = "llamacpp"
    in_process = True

    def context_fix(self, model: str, size: int) -> str:
        return f"Set LLAMACPP_N_CTX={size} (or more) and restart ctistudio, or shorten the input."

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 8192,
        threads: int | None = None,
        n_gpu_layers: int = -1,
        seed: int = 42,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("default_model", Path(model_path).stem)
        kwargs["max_in_flight"] = 1
        super().__init__(**kwargs)
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.threads = threads
        self.n_gpu_layers = n_gpu_layers
        self.seed = seed

    @property
    def endpoint(self) -> str:
        return f"llamacpp:{self.model_path}"

    async def loaded(self) -> LoadedModel:
        """Load the model (in a worker thread) unless this process already has it."""
        if not self.model_path.is_file():
            raise ModelNotLoaded(
                f"llamacpp: no model file at {self.model_path}",
                fix="Set LLAMACPP_MODEL_PATH to a GGUF file or a catalog name (`ctistudio models list`).",
                provider=self.name,
            )
        return await asyncio.to_thread(
            LoadedModel.get,
            self.model_path,
            n_ctx=self.n_ctx,
            threads=self.threads,
            n_gpu_layers=self.n_gpu_layers,
            seed=self.seed,
        )

    def call_arguments(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "stream": stream,
            "stop": request.stop or [],
        }
        for key in ("temperature", "top_p", "seed"):
            value = getattr(request, key)
            if value is not None:
                arguments[key] = value
        if request.response_schema is not None:
            arguments["response_format"] = {"type": "json_object", "schema": request.response_schema}
        return arguments

    # -- chat ----------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        model = await self.loaded()
        arguments = self.call_arguments(request, stream=False)
        started = time.perf_counter()
        data, perf = await asyncio.to_thread(self._run, model, arguments, request)
        elapsed = time.perf_counter() - started
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise BadOutput(f"llamacpp returned an unexpected response: {str(data)[:300]}") from exc
        text, reasoning = choose_answer(message.get("content"), None)
        usage = Usage(**{k: (data.get("usage") or {}).get(k) for k in ("prompt_tokens", "completion_tokens")})
        return self._result(request, text, reasoning, choice.get("finish_reason"), usage, _timings(elapsed, None, perf))

    def _run(self, model: LoadedModel, arguments: dict[str, Any], request: ChatRequest) -> tuple[Any, Any]:
        with model.lock:
            model.reset_perf()
            try:
                data = model.llm.create_chat_completion(**arguments)
            except ValueError as exc:
                raise (overflow_from(exc, self.default_model or "") or _bad_request(exc)) from exc
            return data, model.perf()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        model = await self.loaded()
        arguments = self.call_arguments(request, stream=True)
        collected = AnswerStream()
        finish_reason = None
        chunks = iterate_in_thread(lambda: self._chunks(model, arguments), lock=model.lock, name="llamacpp")
        async for chunk in chunks:
            choice = (chunk.get("choices") or [{}])[0]
            finish_reason = choice.get("finish_reason") or finish_reason
            visible = collected.feed((choice.get("delta") or {}).get("content") or "")
            if visible:
                yield StreamDelta(text=visible)
        tail = collected.flush()
        if tail:
            yield StreamDelta(text=tail)
        text, reasoning = collected.answer()
        usage = Usage(completion_tokens=len(collected.pieces))  # prompt tokens: the counters see only uncached
        timings = _timings(collected.elapsed, collected.first, model.perf())
        yield StreamDelta(done=True, result=self._result(request, text, reasoning, finish_reason, usage, timings))

    def _chunks(self, model: LoadedModel, arguments: dict[str, Any]) -> Iterator[Any]:
        """The streamed chunks (runs in the worker thread, which holds the model lock)."""
        model.reset_perf()
        try:
            yield from model.llm.create_chat_completion(**arguments)
        except ValueError as exc:
            raise (overflow_from(exc, self.default_model or "") or _bad_request(exc)) from exc

    def _result(
        self, request: ChatRequest, text: str, reasoning: str | None, finish: Any, usage: Usage, timings: Timings
    ) -> ChatResult:
        return ChatResult(
            text=text,
            reasoning=reasoning,
            finish_reason=finish,
            usage=usage,
            timings=timings,
            provider=self.name,
            model=request.model or self.default_model or "",
            url=f"file://{self.model_path}",
        )

    # -- facts -------------------------------------------------------------------------------------
    async def count_tokens(self, text: str, model: str | None = None) -> int:
        """Exact: the model's own tokenizer (as the chat template sees the text)."""
        loaded = await self.loaded()
        return len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def context_length(self, model: str) -> int | None:
        return self.context_override(model) or self.n_ctx

    async def models(self) -> list[ModelInfo]:
        current = LoadedModel._current
        size = self.model_path.stat().st_size if self.model_path.is_file() else None
        return [
            ModelInfo(
                id=self.default_model or self.model_path.stem,
                provider=self.name,
                loaded=current is not None and current.key[0] == str(self.model_path),
                context_length=self.n_ctx,
                type="llm",
                format="gguf",
                size_bytes=size,
            )
        ]

    async def health(self) -> Health:
        if not self.model_path.is_file():
            return Health(provider=self.name, ok=False, detail=f"no model file at {self.model_path}")
        try:
            _llama_cpp()
        except ProviderUnavailable as error:
            return Health(provider=self.name, ok=False, detail=error.message)
        return Health(provider=self.name, ok=True, detail=f"in-process ({self.model_path.name})")


def _bad_request(exc: ValueError) -> Exception:
    return BadRequest(f"llamacpp rejected the request: {exc}", provider="llamacpp")


def _timings(total: float, first: float | None, perf: tuple[float, int, float, int] | None) -> Timings:
    """Timings from llama.cpp's own counters when present (exact), else from the wall clock."""
    timings = Timings(time_to_first_token=first, total=total)
    if perf:
        prompt_ms, prompt_n, eval_ms, eval_n = perf
        if prompt_ms > 0 and prompt_n:
            timings.prompt_tokens_per_s = prompt_n / (prompt_ms / 1000)
        if eval_ms > 0 and eval_n:
            timings.generation_tokens_per_s = eval_n / (eval_ms / 1000)
    return timings
