"""Doubles of the cloud APIs on 127.0.0.1: OpenAI's chat/embeddings API and Anthropic's Messages API.

Point the product at them with ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` (``double.env()`` gives the
variables, keys included). They share the LM Studio double's machinery (scripted replies, responder,
faults, request log, in-flight peak, the ``chars_per_token`` tokenizer — see
:mod:`ctistudio.testing.lmstudio_double`) and answer with each vendor's own error shapes:

OpenAI (:class:`OpenAIDouble`)
    401 ``invalid_api_key``; 404 ``model_not_found``; 400 ``context_length_exceeded`` ("This model's maximum
    context length is N tokens. However, your messages resulted in M tokens…"); 429 ``rate_limit_exceeded``
    with Retry-After; 500 ``server_error``; reasoning models (``o1``…, ``gpt-5``…) refuse ``temperature``,
    ``top_p`` and ``max_tokens`` (400 ``unsupported_parameter``). ``json_object`` is accepted.

Anthropic (:class:`AnthropicDouble`)
    ``POST /v1/messages`` (JSON or SSE events ``message_start`` … ``message_stop``), ``GET /v1/models``;
    requires ``x-api-key`` and ``anthropic-version``; refuses a ``system`` role inside ``messages``; 400
    "prompt is too long: N tokens > M maximum"; 404 ``not_found_error``; ``overloaded()`` → 529
    ``overloaded_error``; ``rate_limit()`` → 429 ``rate_limit_error`` with Retry-After.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from ctistudio.testing.http_double import ChatCall, Exchange, Fault, HttpDouble, Reply, split_tokens
from ctistudio.testing.openai_compatible_double import MESSAGE_OVERHEAD_TOKENS, ModelSpec, OpenAICompatibleDouble

_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")


class OpenAIDouble(OpenAICompatibleDouble):
    """OpenAI's ``/v1`` chat completions, embeddings and model list."""

    def __init__(
        self,
        *,
        models: ModelSpec | None = None,
        embeddings: ModelSpec | None = None,
        api_key: str | None = "sk-test-double",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            models={"gpt-4o-mini": 128000, "o4-mini": 200000} if models is None else models,
            embeddings={"text-embedding-3-small": 8191} if embeddings is None else embeddings,
            api_key=api_key,
            jit_loading=False,
            **kwargs,
        )

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.url, "OPENAI_API_KEY": self.api_key or ""}

    def authorized(self, ex: Exchange) -> bool:
        header = ex.header("Authorization") or ""
        if header == f"Bearer {self.api_key}":
            return True
        if not header.startswith("Bearer ") or header == "Bearer ":
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            shown = header[7:][:3] + "*" * 8 + header[7:][-4:]
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        ex.send_json(401, self.error_body(message, "invalid_api_key"))
        return False

    def unknown_endpoint(self, ex: Exchange) -> None:
        ex.send_json(404, self.error_body(f"Invalid URL ({ex.record.method} {ex.record.path})"))

    def server_error_body(self) -> dict[str, Any]:
        message = "The server had an error while processing your request. Sorry about that!"
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}

    def rate_limit_body(self) -> dict[str, Any]:
        message = (
            "Rate limit reached for gpt-4o-mini in organization org-double on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 1s."
        )
        return {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}

    def reject_params(self, body: dict[str, Any]) -> tuple[int, Any] | None:
        if not _REASONING_MODEL.match(str(body.get("model") or "")):
            return None
        for name in ("temperature", "top_p"):
            if name in body and body[name] != 1:
                message = f"Unsupported parameter: '{name}' is not supported with this model."
                return 400, self.error_body(message, "unsupported_parameter", name)
        if "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return 400, self.error_body(message, "unsupported_parameter", "max_tokens")
        return None


class AnthropicDouble(HttpDouble):
    """Anthropic's Messages API (``POST /v1/messages``), streaming included."""

    prediction_paths = ("/v1/messages",)
    chat_path = "/v1/messages"

    def __init__(
        self, *, models: dict[str, int] | None = None, api_key: str | None = "sk-ant-test-double", **kwargs: Any
    ) -> None:
        super().__init__(api_key=api_key, **kwargs)
        self.models = dict(models or {"claude-haiku-4-5": 200000})
        self.route("POST", "/v1/messages", self._messages)
        self.route("GET", "/v1/models", self._list_models)

    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": self.root_url, "ANTHROPIC_API_KEY": self.api_key or ""}

    def overloaded(self, times: int = 1, *, retry_after: float | None = None) -> Fault:
        """The next ``times`` requests get HTTP 529 ``overloaded_error``."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return self.fail(Fault(status=529, body=_error("overloaded_error", "Overloaded"), headers=headers,
                               times=times, paths=(self.chat_path,)))  # fmt: skip

    # -- wording -----------------------------------------------------------------------------------------
    def authorized(self, ex: Exchange) -> bool:
        if ex.header("x-api-key") == self.api_key:
            return True
        ex.send_json(401, _error("authentication_error", "invalid x-api-key"))
        return False

    def unknown_endpoint(self, ex: Exchange) -> None:
        ex.send_json(404, _error("not_found_error", "Not found"))

    def server_error_body(self) -> dict[str, Any]:
        return _error("api_error", "Internal server error")

    def rate_limit_body(self) -> dict[str, Any]:
        return _error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")

    def _list_models(self, ex: Exchange) -> None:
        data = [{"type": "model", "id": key, "display_name": key, "created_at": "2025-10-01T00:00:00Z"}
                for key in self.models]  # fmt: skip
        ex.send_json(200, {"data": data, "has_more": False, "first_id": None, "last_id": None})

    # -- /v1/messages ------------------------------------------------------------------------------------
    def _messages(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        problem = self._check(ex, body)
        if problem:
            ex.send_json(*problem)
            return
        messages = body["messages"]
        system = body.get("system") or ""
        system_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
        prompt = sum(self.tokens(_content_text(m.get("content"))) + MESSAGE_OVERHEAD_TOKENS for m in messages)
        prompt += self.tokens(system_text)
        window = self.models[body["model"]]
        if prompt > window:
            ex.send_json(
                400, _error("invalid_request_error", f"prompt is too long: {prompt} tokens > {window} maximum")
            )
            return
        call = ChatCall(
            model=body["model"],
            requested_model=body["model"],
            messages=[{"role": "system", "content": system_text}, *messages] if system_text else messages,
            response_format=None,
            max_tokens=body["max_tokens"],
            stream=bool(body.get("stream")),
            prompt_tokens=prompt,
            body=body,
        )
        reply = self.next_reply(call)
        tokens = split_tokens(reply.content, self.chars_per_token)
        stop = reply.finish_reason or "end_turn"
        if len(tokens) > call.max_tokens:  # type: ignore[operator]
            tokens, stop = tokens[: call.max_tokens], "max_tokens"
        if call.stream:
            self._stream(ex, call, reply, tokens, stop)
            return
        time.sleep((self.latency if reply.latency is None else reply.latency) + self.token_latency * len(tokens))
        ex.send_json(
            200,
            {
                "id": "msg_" + uuid.uuid4().hex[:24],
                "type": "message",
                "role": "assistant",
                "model": call.model,
                "content": [{"type": "text", "text": "".join(tokens)}],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": reply.completion_tokens or len(tokens)},
            },
        )

    def _check(self, ex: Exchange, body: dict[str, Any]) -> tuple[int, Any] | None:
        if not ex.header("anthropic-version"):
            return 400, _error("invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body.get("max_tokens"), int):
            return 400, _error("invalid_request_error", "max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error("invalid_request_error", "messages: Field required")
        for index, message in enumerate(messages):
            if message.get("role") not in ("user", "assistant"):
                return 400, _error(
                    "invalid_request_error",
                    f"messages.{index}.role: Input should be 'user' or 'assistant'",
                )
        if body.get("model") not in self.models:
            return 404, _error("not_found_error", f"model: {body.get('model')}")
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 1:
            return 400, _error("invalid_request_error", "temperature: range: 0..1")
        return None

    def _stream(self, ex: Exchange, call: ChatCall, reply: Reply, tokens: list[str], stop: str) -> None:
        message_id = "msg_" + uuid.uuid4().hex[:24]
        ex.start_stream(200)
        start = {"id": message_id, "type": "message", "role": "assistant", "model": call.model, "content": [],
                 "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": call.prompt_tokens, "output_tokens": 1}}  # fmt: skip
        ex.send_event({"type": "message_start", "message": start}, event="message_start")
        time.sleep(self.latency if reply.latency is None else reply.latency)
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        ex.send_event(block, event="content_block_start")
        for index, token in enumerate(tokens):
            if ex.drop_after is not None and index >= ex.drop_after:
                ex.drop()
                return
            if index and self.token_latency:
                time.sleep(self.token_latency)
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
            ex.send_event(delta, event="content_block_delta")
        ex.send_event({"type": "content_block_stop", "index": 0}, event="content_block_stop")
        usage = {"output_tokens": reply.completion_tokens or len(tokens)}
        ex.send_event(
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage},
            event="message_delta",
        )
        ex.send_event({"type": "message_stop"}, event="message_stop", last=True)
        ex.end_stream()


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""
