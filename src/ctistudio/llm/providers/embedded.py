"""The embedded engine: answers with no server, no key and no internet (once its model is installed).

Chat runs llama.cpp's own ``llama-server`` inside this process (the ``xllamacpp`` wheel) on a free
127.0.0.1 port, started on first use, and talks to it through :class:`LlamaCppServerProvider` — the same
code path as an external llama-server (exact token counts, per-slot context from /props, slots as the
concurrency limit, server-reported timings). Embeddings use the embedded MiniLM ONNX model
(:mod:`ctistudio.embeddings`). Models come from the catalog (``ctistudio models install``).

One engine per (model, context, slots) per process, shared by every gateway; stopped at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ctistudio.llm.errors import ModelNotLoaded, ProviderUnavailable
from ctistudio.llm.providers.llamacpp_server import LlamaCppServerProvider
from ctistudio.llm.transport import HttpTransport
from ctistudio.llm.types import ChatRequest, ChatResult, EmbeddingResult, Health, ModelInfo, StreamDelta
from ctistudio.modelhub import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, ModelInstaller, ModelNotInstalled

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedLlamaServer:
    """llama-server running in this process (``xllamacpp.Server``), listening on 127.0.0.1."""

    _shared: dict[tuple[str, int, int, int], EmbeddedLlamaServer] = {}
    _lock = threading.Lock()

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        slots: int,
        threads: int,
        alias: str,
        kv_unified: bool = True,
        embeddings: bool = False,
    ) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise ProviderUnavailable(
                "the embedded engine needs the xllamacpp package, which is not installed",
                fix="Install ctistudio's dependencies again (`./studio start`, or pip install xllamacpp).",
                provider="embedded",
            ) from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.model_alias = {alias}
        params.n_ctx = n_ctx
        params.n_parallel = slots
        params.kv_unified = kv_unified  # True: every slot may use the whole window (else n_ctx / slots each)
        params.cache_prompt = True
        params.hostnames = ["127.0.0.1"]
        params.port = free_port()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = 1  # errors only: llama.cpp's info log would flood the terminal
        # Where slot states go when a shared prefix is copied between slots (LlamaCppServerProvider.share_prefix);
        # llama-server appends the file name to this path as it is, hence the trailing separator.
        self.slot_dir = Path(tempfile.mkdtemp(prefix="ctistudio-slots-"))
        params.slot_save_path = str(self.slot_dir) + os.sep
        if embeddings:  # serve /v1/embeddings instead of chat (llama-server --embeddings --pooling mean)
            params.embedding = True
            params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        started = time.perf_counter()
        try:
            self._server: Any = xllamacpp.Server(params)
        except BaseException:
            shutil.rmtree(self.slot_dir, ignore_errors=True)
            raise
        self.url = f"http://127.0.0.1:{params.port}"
        self.model_path = model_path
        self.n_ctx = n_ctx  # the whole KV cache
        self.slots = slots
        self.window = n_ctx if kv_unified else n_ctx // slots  # the tokens one request may use
        self.load_seconds = time.perf_counter() - started
        log.info("embedded engine: %s loaded in %.1fs at %s", model_path.name, self.load_seconds, self.url)

    @classmethod
    def shared(cls, model_path: Path, *, n_ctx: int, slots: int, threads: int, alias: str) -> EmbeddedLlamaServer:
        """The process's engine for these settings, started on first call (blocking: load takes ~1–3 s).

        ``n_ctx`` is the window of *each* request: the engine gets ``n_ctx * slots`` tokens of KV cache, one
        ``n_ctx`` per slot. A unified cache of ``n_ctx`` shared by the slots let two concurrent extraction
        prompts of ~4k tokens each fail together with "Context size has been exceeded" mid-answer, although
        each fitted the window the router budgets for (the 0.5B model's KV cache is ~12 KB per token, so the
        second window costs ~100 MB).
        """
        key = (str(model_path), n_ctx, slots, threads)
        with cls._lock:
            engine = cls._shared.get(key)
            if engine is None:
                engine = cls(
                    model_path, n_ctx=n_ctx * slots, slots=slots, threads=threads, alias=alias, kv_unified=False
                )
                cls._shared[key] = engine
            return engine

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            del server  # xllamacpp stops the server when the object is released
        shutil.rmtree(self.slot_dir, ignore_errors=True)

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            engines, cls._shared = list(cls._shared.values()), {}
        for engine in engines:
            engine.stop()


atexit.register(EmbeddedLlamaServer.stop_all)


class EmbeddedProvider(LlamaCppServerProvider):
    """Chat with the in-process llama-server; embeddings with the MiniLM ONNX embedder."""

    name = "embedded"

    def __init__(
        self,
        installer: ModelInstaller,
        *,
        chat_model: str = DEFAULT_CHAT_MODEL,
        embedding_model_name: str = DEFAULT_EMBEDDING_MODEL,
        n_ctx: int = 8192,
        slots: int = DEFAULT_SLOTS,
        threads: int | None = None,
        timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("default_model", chat_model)
        kwargs.setdefault("embedding_model", embedding_model_name)
        kwargs["max_in_flight"] = slots
        super().__init__("http://127.0.0.1:0", timeout=timeout, **kwargs)
        self.installer = installer
        self.chat_model = chat_model
        self.embedding_model_name = embedding_model_name
        self.n_ctx = n_ctx
        self.slots = slots
        self.threads = threads or os.cpu_count() or 2
        self.timeout = timeout
        self.engine: EmbeddedLlamaServer | None = None
        self._embedder: Any = None

    @property
    def endpoint(self) -> str:
        return f"embedded:{self.chat_model}"

    @property
    def base_url(self) -> str:
        if self.engine is None:
            return "in-process llama-server (starts on first use)"
        return self.engine.url + "/v1"

    in_process = True

    def context_fix(self, model: str, size: int) -> str:
        return (
            f"Set CTISTUDIO_EMBEDDED_N_CTX={size} (or more; the model was trained for up to 32,768) and restart "
            "ctistudio, or shorten the input."
        )

    def fix_for(self, kind: str) -> str | None:
        if kind == "context":
            return (
                f"Raise CTISTUDIO_EMBEDDED_N_CTX (now {self.n_ctx}; the model was trained for up to 32768) "
                "or shorten the input."
            )
        if kind == "model":
            return f"Run `ctistudio models install {self.chat_model}`."
        return super().fix_for(kind)

    # -- engine lifecycle ----------------------------------------------------------------------------
    def installed(self, name: str) -> Path:
        """Where catalog model ``name`` is; :class:`ModelNotLoaded` (a fallback error) with the fix when absent."""
        try:
            return self.installer.path(name)
        except ModelNotInstalled as error:
            raise ModelNotLoaded(
                f"embedded: the model {name!r} is not installed in {self.installer.models_dir}",
                fix=error.fix,
                provider=self.name,
                model=name,
            ) from error

    def model_path(self) -> Path:
        return self.installed(self.chat_model)

    async def start(self) -> EmbeddedLlamaServer:
        """Start (or join) the in-process llama-server; the load runs in a worker thread."""
        if self.engine is not None:
            return self.engine
        path = self.model_path()
        # Concurrent callers all go to EmbeddedLlamaServer.shared, whose lock starts the engine once.
        engine = await asyncio.to_thread(
            EmbeddedLlamaServer.shared,
            path,
            n_ctx=self.n_ctx,
            slots=self.slots,
            threads=self.threads,
            alias=self.chat_model,
        )
        if self.engine is None:
            self.transport = HttpTransport(
                engine.url + "/v1", provider=self.name, timeout=self.timeout, fix_for=self.fix_for
            )
            self.served_model = self.chat_model
            self.engine = engine
        return engine

    # -- the provider interface: start the engine, then behave as a llama-server client ------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        await self.start()
        return await super().complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        await self.start()
        async for delta in super().stream(request):
            yield delta

    async def share_prefix(self, request: ChatRequest) -> bool:
        await self.start()
        return await super().share_prefix(request)

    async def count_tokens(self, text: str, model: str | None = None) -> int:
        await self.start()
        return await super().count_tokens(text, model)

    async def context_length(self, model: str) -> int | None:
        await self.start()
        return await super().context_length(model)

    async def models(self) -> list[ModelInfo]:
        """The chat and embedding models; ``loaded`` = installed (the engine loads it with ``n_ctx`` on first use)."""
        status = self.installer.status(self.chat_model)
        return [
            ModelInfo(
                id=self.chat_model,
                provider=self.name,
                loaded=status.installed,
                context_length=self.n_ctx,
                max_context_length=status.context_length,
                type="llm",
                format="gguf",
                size_bytes=status.size_bytes,
            ),
            ModelInfo(
                id=self.embedding_model_name,
                provider=self.name,
                loaded=self.installer.is_installed(self.embedding_model_name),
                type="embedding",
            ),
        ]

    async def health(self) -> Health:
        """Cheap: the model is installed and the engine importable (the engine itself starts on first use)."""
        if not self.installer.is_installed(self.chat_model):
            return Health(
                provider=self.name,
                ok=False,
                detail=f"model {self.chat_model} not installed (run `ctistudio models install {self.chat_model}`)",
            )
        if self.engine is not None:
            return await super().health()
        try:
            import xllamacpp  # noqa: F401
        except ImportError:
            return Health(provider=self.name, ok=False, detail="the xllamacpp package is not installed")
        return Health(provider=self.name, ok=True, detail="model installed; the engine starts on first use")

    # -- embeddings ----------------------------------------------------------------------------------
    def embedder(self) -> Any:
        if self._embedder is None:
            from ctistudio.embeddings import MiniLMEmbedder

            folder = self.installed(self.embedding_model_name)
            self._embedder = MiniLMEmbedder(folder, name=self.embedding_model_name)
        return self._embedder

    async def embed(self, texts: list[str], model: str | None = None) -> EmbeddingResult:
        embedder = self.embedder()
        vectors = await asyncio.to_thread(embedder.embed, texts)
        return EmbeddingResult(
            vectors=vectors.tolist(), model=embedder.name, provider=self.name, dimensions=embedder.dimensions
        )

    async def aclose(self) -> None:
        await super().aclose()  # the engine stays up for other gateways of this process; stopped at exit
