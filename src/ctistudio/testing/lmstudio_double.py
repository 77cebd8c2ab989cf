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
    the default context, as the real server does), ``POST /api/v1/models/unload``. Any other path answers
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

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ctistudio.testing.http_double import (
    ChatCall,
    Exchange,
    Fault,
    HttpDouble,
    RecordedRequest,
    Reply,
    hashed_embedding,
    split_tokens,
)

__all__ = [
    "DEFAULT_EMBEDDINGS",
    "DEFAULT_LLMS",
    "ChatCall",
    "DoubleModel",
    "Fault",
    "LMStudioDouble",
    "OpenAICompatibleDouble",
    "RecordedRequest",
    "Reply",
]

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGE_OVERHEAD_TOKENS = 4

DEFAULT_LLMS: dict[str, int | None] = {"qwen/qwen3-4b-2507": 16384, "deepseek/deepseek-r1-0528-qwen3-8b": 16384}
DEFAULT_EMBEDDINGS: dict[str, int | None] = {"text-embedding-nomic-embed-text-v1.5": 2048}

ModelSpec = Mapping[str, "int | DoubleModel | None"]


@dataclass
class DoubleModel:
    """A model the double knows; ``instances`` maps loaded instance id → its loaded context length."""

    key: str
    type: str = "llm"  # llm | embedding
    max_context_length: int = 131072
    default_context_length: int = 4096
    instances: dict[str, int] = field(default_factory=dict)
    publisher: str = "lmstudio-community"
    architecture: str | None = "qwen3"
    quantization: str = "Q4_K_M"
    format: str = "gguf"
    size_bytes: int = 2_497_280_256
    params_string: str | None = "4B"


class _Refusal(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


class OpenAICompatibleDouble(HttpDouble):
    """The OpenAI wire format (chat, streaming, embeddings, model list) with overridable wording."""

    prediction_paths = (CHAT, EMBEDDINGS)
    chat_path = CHAT
    stream_errors_in_band = False
    accepted_response_formats: tuple[str, ...] = ("text", "json_schema", "json_object")

    def __init__(
        self,
        *,
        models: ModelSpec | None = None,
        embeddings: ModelSpec | None = None,
        jit_loading: bool = True,
        embedding_dimensions: int = 64,
        max_concurrent_predictions: int | None = None,
        load_time: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.models: dict[str, DoubleModel] = {}
        self.jit_loading = jit_loading
        self.embedding_dimensions = embedding_dimensions
        self.load_time = load_time
        self._slots = threading.BoundedSemaphore(max_concurrent_predictions) if max_concurrent_predictions else None
        for key, spec in (DEFAULT_LLMS if models is None else models).items():
            self.add_model(key, spec)
        for key, spec in (DEFAULT_EMBEDDINGS if embeddings is None else embeddings).items():
            self.add_model(key, spec, type="embedding", max_context_length=2048, default_context_length=2048)
        self.route("GET", "/v1/models", self._list_openai_models)
        self.route("POST", CHAT, self._chat)
        self.route("POST", EMBEDDINGS, self._embeddings)

    # -- model state ---------------------------------------------------------------------------------
    def add_model(self, key: str, spec: int | DoubleModel | None = None, **fields: Any) -> DoubleModel:
        """Add a model: ``spec`` is its loaded context (``None`` = not loaded) or a :class:`DoubleModel`."""
        model = spec if isinstance(spec, DoubleModel) else DoubleModel(key=key, **fields)
        if isinstance(spec, int):
            model.instances[key] = spec
        with self.lock:
            self.models[key] = model
        return model

    def load_instance(self, key: str, context_length: int | None = None) -> tuple[str, int]:
        """Load ``key`` (stacking ``<key>:2`` when it is loaded already); returns ``(instance_id, context)``."""
        with self.lock:
            model = self.models[key]
            instance = key
            if instance in model.instances:
                instance = next(f"{key}:{n}" for n in itertools.count(2) if f"{key}:{n}" not in model.instances)
            window = context_length or model.default_context_length
            model.instances[instance] = window
            return instance, window

    def unload_instance(self, instance_id: str) -> bool:
        with self.lock:
            for model in self.models.values():
                if model.instances.pop(instance_id, None) is not None:
                    return True
        return False

    def context_of(self, key: str) -> int | None:
        """The loaded context of ``key``'s first instance (``None`` when not loaded)."""
        with self.lock:
            instances = self.models[key].instances
            return next(iter(instances.values()), None)

    def resolve(self, requested: str | None, kind: str) -> tuple[str, int]:
        """The instance answering a request for ``requested`` (JIT-loading it when allowed)."""
        with self.lock:
            loaded = [(iid, ctx) for m in self.models.values() if m.type == kind for iid, ctx in m.instances.items()]
            if not requested:
                if loaded:
                    return loaded[0]
                raise _Refusal(*self.no_models_loaded())
            for iid, ctx in loaded:
                if iid == requested:
                    return iid, ctx
            model = self.models.get(requested)
            if model is not None and model.type == kind:
                if model.instances:
                    return next(iter(model.instances.items()))
                if self.jit_loading:
                    return self.load_instance(requested)  # JIT: at the default context length
            if not loaded and not self.jit_loading:
                raise _Refusal(*self.no_models_loaded())
            raise _Refusal(*self.model_not_found(requested))

    # -- helpers for tests -------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        return sum(self.tokens(_text(m.get("content"))) + MESSAGE_OVERHEAD_TOKENS for m in messages)

    # -- dialect (OpenAI wording; LM Studio and OpenAI doubles override) -----------------------------------
    def error_body(self, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}

    def server_error_body(self) -> dict[str, Any]:
        return {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}

    def rate_limit_body(self) -> dict[str, Any]:
        return self.error_body("Rate limit reached: too many requests, please try again later.", "rate_limit_exceeded")

    def reject_params(self, body: dict[str, Any]) -> tuple[int, Any] | None:
        """An error for request parameters this server refuses (``None``: all accepted)."""
        return None

    def model_not_found(self, requested: str) -> tuple[int, Any]:
        message = f"The model `{requested}` does not exist or you do not have access to it."
        return 404, self.error_body(message, "model_not_found")

    def no_models_loaded(self) -> tuple[int, Any]:
        return 404, self.error_body("No models are available", "model_not_found", "model")

    def overflow(self, prompt_tokens: int, context_length: int) -> tuple[int, Any]:
        message = (
            f"This model's maximum context length is {context_length} tokens. However, your messages resulted "
            f"in {prompt_tokens} tokens. Please reduce the length of the messages."
        )
        return 400, self.error_body(message, "context_length_exceeded", "messages")

    def bad_response_format(self, kind: str) -> tuple[int, Any]:
        return 400, self.error_body(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'.",
            "invalid_value",
            "response_format.type",
        )

    # -- /v1/models and /v1/embeddings -----------------------------------------------------------------
    def _list_openai_models(self, ex: Exchange) -> None:
        with self.lock:
            keys = [k for k, m in self.models.items() if self.jit_loading or m.instances]
        data = [{"id": k, "object": "model", "owned_by": "organization_owner"} for k in keys]
        ex.send_json(200, {"data": data, "object": "list"})

    def _embeddings(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            ex.send_json(400, self.error_body("'input' must be a string or a list of strings", param="input"))
            return
        try:
            instance, _ = self.resolve(body.get("model"), "embedding")
        except _Refusal as refusal:
            ex.send_json(refusal.status, refusal.payload)
            return
        with self._prediction_slot():
            time.sleep(self.latency)
            data = [
                {"object": "embedding", "embedding": hashed_embedding(t, self.embedding_dimensions), "index": i}
                for i, t in enumerate(texts)
            ]
        used = sum(self.tokens(t) for t in texts)
        ex.send_json(
            200,
            {"object": "list", "data": data, "model": instance, "usage": {"prompt_tokens": used, "total_tokens": used}},
        )

    # -- /v1/chat/completions ------------------------------------------------------------------------
    def _chat(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            ex.send_json(400, self.error_body("'messages' must be a non-empty array", param="messages"))
            return
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") not in self.accepted_response_formats:
            ex.send_json(*self.bad_response_format(str(fmt.get("type"))))
            return
        try:
            instance, window = self.resolve(body.get("model"), "llm")
        except _Refusal as refusal:
            ex.send_json(refusal.status, refusal.payload)
            return
        refused = self.reject_params(body)
        if refused is not None:
            ex.send_json(*refused)
            return
        stream = bool(body.get("stream"))
        prompt = self.prompt_tokens(messages)
        if prompt > window:
            status, payload = self.overflow(prompt, window)
            if stream and self.stream_errors_in_band:
                ex.start_stream(200)
                ex.send_event(payload, event="error")
                ex.end_stream()
            else:
                ex.send_json(status, payload)
            return
        call = ChatCall(
            model=instance,
            requested_model=body.get("model"),
            messages=messages,
            response_format=fmt if isinstance(fmt, dict) else None,
            max_tokens=body.get("max_tokens"),
            stream=stream,
            prompt_tokens=prompt,
            body=body,
        )
        reply = self.next_reply(call)
        with self._prediction_slot():
            if stream:
                self._stream_answer(ex, call, reply, window)
            else:
                self._whole_answer(ex, call, reply, window)

    def _budget(self, call: ChatCall, reply: Reply, window: int) -> tuple[list[str], list[str], str]:
        """The reasoning and content tokens that fit ``max_tokens`` and the window, and the finish reason."""
        thinking = split_tokens(reply.reasoning or "", self.chars_per_token)
        answer = split_tokens(reply.content, self.chars_per_token)
        limit = window - call.prompt_tokens
        if isinstance(call.max_tokens, int) and call.max_tokens > 0:
            limit = min(limit, call.max_tokens)
        finish = reply.finish_reason or "stop"
        if len(thinking) + len(answer) > limit:
            finish = "length"
            thinking = thinking[:limit]
            answer = answer[: max(0, limit - len(thinking))]
        return thinking, answer, finish

    def _usage(self, call: ChatCall, reply: Reply, generated: int) -> dict[str, int]:
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else call.prompt_tokens
        completion = reply.completion_tokens if reply.completion_tokens is not None else generated
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _whole_answer(self, ex: Exchange, call: ChatCall, reply: Reply, window: int) -> None:
        thinking, answer, finish = self._budget(call, reply, window)
        latency = self.latency if reply.latency is None else reply.latency
        time.sleep(latency + self.token_latency * (len(thinking) + len(answer)))
        message: dict[str, Any] = {"role": "assistant", "content": "".join(answer)}
        if thinking:
            message["reasoning_content"] = "".join(thinking)
        ex.send_json(
            200,
            {
                "id": _completion_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [{"index": 0, "logprobs": None, "finish_reason": finish, "message": message}],
                "usage": self._usage(call, reply, len(thinking) + len(answer)),
                "stats": {},
                "system_fingerprint": call.model,
            },
        )

    def _stream_answer(self, ex: Exchange, call: ChatCall, reply: Reply, window: int) -> None:
        thinking, answer, finish = self._budget(call, reply, window)
        head = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": call.model, "system_fingerprint": call.model}  # fmt: skip
        ex.start_stream(200)
        time.sleep(self.latency if reply.latency is None else reply.latency)
        pieces = [("reasoning_content", t) for t in thinking] + [("content", t) for t in answer]
        for index, (kind, token) in enumerate(pieces):
            if ex.drop_after is not None and index >= ex.drop_after:
                ex.drop()
                return
            if index and self.token_latency:
                time.sleep(self.token_latency)
            delta = {"role": "assistant", kind: token}
            ex.send_event({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
        if ex.drop_after is not None:
            ex.drop()
            return
        ex.send_event({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
        if (call.body.get("stream_options") or {}).get("include_usage"):
            ex.send_event({**head, "choices": [], "usage": self._usage(call, reply, len(pieces))})
        ex.send_event("[DONE]")
        ex.end_stream()

    @contextlib.contextmanager
    def _prediction_slot(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        with self._slots:
            yield


class LMStudioDouble(OpenAICompatibleDouble):
    """LM Studio 0.4: the OpenAI-compatible endpoints with LM Studio's wording, plus its native REST API."""

    stream_errors_in_band = True
    accepted_response_formats = ("text", "json_schema")

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


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:20]
