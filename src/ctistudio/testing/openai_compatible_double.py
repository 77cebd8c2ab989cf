"""The OpenAI wire format as a test double: ``/v1/models``, ``/v1/chat/completions`` (JSON and SSE),
``/v1/embeddings`` — the part LM Studio, OpenAI and any OpenAI-compatible server share.

:class:`OpenAICompatibleDouble` holds the model state (keys, loaded instances and their context lengths,
JIT loading), the documented tokenizer, context-overflow and ``max_tokens`` cuts, streaming with usage, and
hooks for each vendor's wording. Use :class:`~ctistudio.testing.lmstudio_double.LMStudioDouble` or
:class:`~ctistudio.testing.cloud_doubles.OpenAIDouble`; the user guide is ``lmstudio_double``'s docstring.
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

from ctistudio.testing.http_double import ChatCall, Exchange, HttpDouble, Reply, hashed_embedding, split_tokens

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


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:20]
