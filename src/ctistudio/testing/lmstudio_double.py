"""A test double of LM Studio: a REAL HTTP server on 127.0.0.1 speaking LM Studio's API.

Use it from tests (fixture ``lmstudio_double`` in :mod:`ctistudio.testing.fixtures`) and benchmarks::

    from ctistudio.testing.lmstudio_double import LMStudioDouble

    with LMStudioDouble(models={"qwen/qwen3-4b-2507": 8192}) as lms:
        lms.url                      # "http://127.0.0.1:PORT/v1" -> LMSTUDIO_API_URL
        lms.env()                    # {"LMSTUDIO_API_URL": ..., "LMSTUDIO_EMBEDDING_URL": ...}
        lms.reply('{"score": 7}')    # the next chat answer (queue: str, dict -> JSON, or Reply)
        lms.responder = lambda call: "yes" if "PowerShell" in call.last_user else None
        ...
        lms.requests_to("/v1/chat/completions")[-1].body   # what the client sent
        lms.peak_in_flight                                  # most predictions at once

Endpoints (as LM Studio 0.4 answers them)
    ``GET /v1/models``, ``POST /v1/chat/completions`` (JSON or SSE with ``stream_options.include_usage``),
    ``POST /v1/embeddings``; native ``GET /api/v0/models`` (``state``, ``loaded_context_length``),
    ``GET /api/v1/models`` (``loaded_instances[].config.context_length``, ``max_context_length`` …),
    ``POST /api/v1/models/load`` (loading a loaded model again STACKS a second instance ``<key>:2`` at
    the default context, as the real server does), ``POST /api/v1/models/unload``, and the stateful
    ``POST /api/v1/chat`` (threads kept per ``response_id``, continued with ``previous_response_id``;
    ``lms.native_chat.threads``; see :mod:`ctistudio.testing.lmstudio_native_chat`). Any other path answers
    HTTP 200 ``{"error": "Unexpected endpoint or method. (GET /x)"}`` — LM Studio's own quirk.
    ``api_version="v0"`` drops /api/v1 (LM Studio 0.3.6–0.3.x); ``"none"`` drops /api/v0 too (older).

Models
    ``models={key: loaded_context_or_None}`` (LLMs; ``None`` = downloaded, not loaded) and
    ``embeddings={key: ...}``; defaults are the seed's models (``DEFAULT_LLMS``, ``DEFAULT_EMBEDDINGS``),
    loaded with 16,384 tokens. ``add_model``, ``load_instance``, ``unload_instance`` change state;
    ``jit_loading=True`` (LM Studio's default) loads a requested-but-unloaded model at its
    ``default_context_length`` (4,096) — exactly the trap that makes ``ctistudio llm load`` necessary.

Tokenizer (documented so computed figures can be checked exactly)
    ``tokens(text) = ceil(len(text) / chars_per_token)`` (``chars_per_token=4``);
    ``prompt_tokens = Σ over messages (tokens(content) + 4)``. A prompt above the loaded context gets
    LM Studio's overflow error (HTTP 400, "Trying to keep the first N tokens when context the overflows.
    However, the model is loaded with context length of only M tokens, which is not enough. …"); when
    streaming, LM Studio answers 200 and sends it as an ``event: error`` frame (``stream_errors_in_band``).
    Completions are cut at ``max_tokens`` or at the context's end (``finish_reason="length"``). A stream
    sends one chunk per token (``chars_per_token`` characters), so ``completion_tokens`` == chunks.

Answers
    The queue (``reply``) first, then ``responder(call)`` (a :class:`ChatCall`: ``messages``, ``model``,
    ``schema``, ``last_user``, ``system``, ``prompt_tokens``…; return ``None`` to pass), then the default:
    a minimal JSON instance of the requested schema, else ``default_reply`` ("OK"). ``Reply(content=,
    reasoning=)`` sends ``reasoning_content``. ``response_format`` ``json_schema``/``text`` is accepted;
    ``json_object`` is REJECTED with "'response_format.type' must be 'json_schema' or 'text'".

Timing
    ``latency`` (seconds before the first token), ``token_latency`` (per generated token), ``load_time``.

Faults (each for the next ``times`` chat requests unless ``paths=`` says otherwise)
    ``server_error()`` (HTTP 500 "channel error"), ``rate_limit(retry_after=1)`` (429 + Retry-After),
    ``drop_connection(after_chunks=2)`` (closes mid-stream; 0 = before answering), ``slow_down(seconds)``,
    ``fail(Fault(...))`` for anything else. ``api_key="k"`` requires ``Authorization: Bearer k`` and
    answers 401 with LM Studio's wording otherwise. ``max_concurrent_predictions`` queues predictions
    beyond it (LM Studio's "Max Concurrent Predictions").

Inspection
    ``requests`` / ``requests_to(path)`` (:class:`RecordedRequest`: method, path, headers, body, status,
    started/finished), ``in_flight``, ``peak_in_flight`` (chat + embeddings only), ``clear()``.
"""

from __future__ import annotations

import time
from typing import Any

from ctistudio.testing.http_double import ChatCall, Exchange, Fault, RecordedRequest, Reply
from ctistudio.testing.lmstudio_native_chat import NATIVE_CHAT, NativeChat
from ctistudio.testing.openai_compatible_double import (
    CHAT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_LLMS,
    EMBEDDINGS,
    MESSAGE_OVERHEAD_TOKENS,
    DoubleModel,
    ModelSpec,
    OpenAICompatibleDouble,
)

__all__ = [
    "CHAT",
    "DEFAULT_EMBEDDINGS",
    "DEFAULT_LLMS",
    "EMBEDDINGS",
    "MESSAGE_OVERHEAD_TOKENS",
    "ChatCall",
    "DoubleModel",
    "Fault",
    "LMStudioDouble",
    "ModelSpec",
    "OpenAICompatibleDouble",
    "RecordedRequest",
    "Reply",
]


class LMStudioDouble(OpenAICompatibleDouble):
    """LM Studio 0.4: the OpenAI-compatible endpoints with LM Studio's wording, plus its native REST API."""

    stream_errors_in_band = True
    accepted_response_formats = ("text", "json_schema")
    prediction_paths = (CHAT, EMBEDDINGS, NATIVE_CHAT)

    def __init__(self, *, api_version: str = "v1", **kwargs: Any) -> None:
        if api_version not in ("v1", "v0", "none"):
            raise ValueError("api_version must be 'v1', 'v0' or 'none'")
        super().__init__(**kwargs)
        self.api_version = api_version
        if api_version in ("v1", "v0"):
            self.route("GET", "/api/v0/models", self._v0_models)
        if api_version == "v1":
            self.route("GET", "/api/v1/models", self._v1_models)
            self.route("POST", "/api/v1/models/load", self._v1_load)
            self.route("POST", "/api/v1/models/unload", self._v1_unload)
            self.native_chat = NativeChat(self)

    def env(self) -> dict[str, str]:
        """Environment variables that point ctistudio at this double."""
        out = {"LMSTUDIO_API_URL": self.url, "LMSTUDIO_EMBEDDING_URL": self.url + "/embeddings"}
        if self.api_key:
            out["LMSTUDIO_API_KEY"] = self.api_key
        return out

    # -- LM Studio's wording ----------------------------------------------------------------------------
    def authorized(self, ex: Exchange) -> bool:
        header = ex.header("Authorization") or ""
        if header == f"Bearer {self.api_key}":
            return True
        if not header.startswith("Bearer "):
            message = (
                "An LM Studio API token is required to make requests to this server, but none was provided "
                "using the Authorization header using the 'Bearer' scheme (i.e., 'Authorization: Bearer "
                "$LM_API_TOKEN'). Learn more at: https://lmstudio.ai/docs/developer/core/authentication."
            )
        else:
            message = (
                "The provided LM Studio API token is invalid. Learn more at: "
                "https://lmstudio.ai/docs/developer/core/authentication."
            )
        ex.send_json(401, {"error": {"type": "invalid_request", "code": "invalid_api_key", "message": message}})
        return False

    def unknown_endpoint(self, ex: Exchange) -> None:
        ex.send_json(200, {"error": f"Unexpected endpoint or method. ({ex.record.method} {ex.record.path})"})

    def server_error_body(self) -> dict[str, Any]:
        return {"error": "Error in channel handler: channel error"}

    def model_not_found(self, requested: str) -> tuple[int, Any]:
        with self.lock:
            examples = ", ".join(list(self.models)[:3])
        message = f'Invalid model identifier "{requested}". Please specify a valid downloaded model (e.g., {examples}).'
        return 400, self.error_body(message, "model_not_found", "model")

    def no_models_loaded(self) -> tuple[int, Any]:
        message = "No models loaded. Please load a model in the developer page or use the 'lms load' command."
        return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "model"}}

    def overflow(self, prompt_tokens: int, context_length: int) -> tuple[int, Any]:
        message = (
            f"Trying to keep the first {prompt_tokens} tokens when context the overflows. However, the model is "
            f"loaded with context length of only {context_length} tokens, which is not enough. Try to load the "
            "model with a larger context length, or provide a shorter input"
        )
        return 400, {"error": message}

    def bad_response_format(self, kind: str) -> tuple[int, Any]:
        return 400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}

    # -- native REST API --------------------------------------------------------------------------------
    def _v1_models(self, ex: Exchange) -> None:
        with self.lock:
            models = [self._v1_model(m) for m in self.models.values()]
        ex.send_json(200, {"models": models})

    @staticmethod
    def _v1_model(m: DoubleModel) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": m.type,
            "publisher": m.publisher,
            "key": m.key,
            "display_name": m.key.rsplit("/", 1)[-1],
            "quantization": {"name": m.quantization, "bits_per_weight": 4},
            "size_bytes": m.size_bytes,
            "params_string": m.params_string if m.type == "llm" else None,
            "loaded_instances": [{"id": iid, "config": {"context_length": ctx}} for iid, ctx in m.instances.items()],
            "max_context_length": m.max_context_length,
            "format": m.format,
        }
        if m.type == "llm":
            item["architecture"] = m.architecture
            item["capabilities"] = {"vision": False, "trained_for_tool_use": True}
            item["description"] = None
        return item

    def _v0_models(self, ex: Exchange) -> None:
        data = []
        with self.lock:
            for m in self.models.values():
                item: dict[str, Any] = {
                    "id": m.key,
                    "object": "model",
                    "type": "embeddings" if m.type == "embedding" else m.type,
                    "publisher": m.publisher,
                    "arch": m.architecture,
                    "compatibility_type": m.format,
                    "quantization": m.quantization,
                    "state": "loaded" if m.instances else "not-loaded",
                    "max_context_length": m.max_context_length,
                }
                if m.instances:
                    item["loaded_context_length"] = next(iter(m.instances.values()))
                data.append(item)
        ex.send_json(200, {"object": "list", "data": data})

    def _v1_load(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        key = body.get("model")
        if key not in self.models:
            ex.send_json(404, {"error": {"message": f'Model "{key}" not found', "type": "invalid_request_error",
                                         "code": "model_not_found"}})  # fmt: skip
            return
        requested = (body.get("config") or {}).get("context_length")
        started = time.perf_counter()
        time.sleep(self.load_time)
        instance, window = self.load_instance(key, requested)
        config = {"context_length": window, "eval_batch_size": 512, "flash_attention": False,
                  "offload_kv_cache_to_gpu": True}  # fmt: skip
        load_time = round(time.perf_counter() - started, 3)
        ex.send_json(200, {"model_instance_id": instance, "config": config, "load_time_seconds": load_time})

    def _v1_unload(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        instance = body.get("instance_id")
        if not isinstance(instance, str) or not self.unload_instance(instance):
            ex.send_json(404, {"error": {"message": f'No loaded model instance "{instance}"',
                                         "type": "invalid_request_error"}})  # fmt: skip
            return
        ex.send_json(200, {"instance_id": instance})
