"""LM Studio 0.4's native stateful chat, ``POST /api/v1/chat``, for :class:`LMStudioDouble`.

As documented by LM Studio (REST API → Chat, Stateful Chats, Streaming events):

- Body: ``model`` (required), ``input`` (a string, or an array of ``{"type": "message", "content": …}``),
  ``system_prompt``, ``stream``, ``temperature``, ``top_p``, ``max_output_tokens``, ``store`` (default
  true), ``previous_response_id`` (must start with ``resp_``); other documented fields are accepted.
- The server keeps every stored answer's thread: a request naming ``previous_response_id`` continues it
  (the earlier system prompt, inputs and answers come first); a ``system_prompt`` sent with it replaces the
  thread's. Any stored answer can be continued again (branching).
- Answer: ``{"model_instance_id", "output": [{"type": "reasoning"|"message", "content"}], "stats":
  {"input_tokens", "total_output_tokens", "reasoning_output_tokens", "tokens_per_second",
  "time_to_first_token_seconds"}, "response_id"}`` (``response_id`` only when ``store`` is true);
  ``input_tokens`` counts the whole thread with the double's tokenizer.
- ``stream: true``: SSE events ``chat.start``, ``prompt_processing.start``/``.end``, ``reasoning.*``,
  ``message.start``, one ``message.delta`` per token, ``message.end``, ``chat.end`` with the whole result.
- Errors, ``{"error": {"type", "message", "code"?, "param"?}}``: a missing model or input (400), an
  unknown ``previous_response_id`` (404 — the wording is ours: LM Studio's is not documented), a thread that
  no longer fits the loaded context (400, LM Studio's overflow wording).

Responders see the whole thread as ``ChatCall.messages``, so one responder serves both endpoints.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from ctistudio.testing.http_double import ChatCall, Exchange
from ctistudio.testing.openai_compatible_double import _Refusal

if TYPE_CHECKING:
    from ctistudio.testing.lmstudio_double import LMStudioDouble

NATIVE_CHAT = "/api/v1/chat"


def _error(message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "invalid_request", "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _input_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [str(i.get("content") or "") for i in value if isinstance(i, dict) and i.get("type") == "message"]
        return "\n".join(texts) if texts else None
    return None


class NativeChat:
    """The ``/api/v1/chat`` route of one double, and the threads it stores (``threads[response_id]``)."""

    def __init__(self, double: LMStudioDouble) -> None:
        self.double = double
        self.threads: dict[str, list[dict[str, Any]]] = {}
        double.route("POST", NATIVE_CHAT, self.handle)

    def _thread(self, body: dict[str, Any]) -> list[dict[str, Any]] | tuple[int, Any]:
        previous = body.get("previous_response_id")
        messages: list[dict[str, Any]] = []
        if previous is not None:
            if not isinstance(previous, str) or not previous.startswith("resp_"):
                return 400, _error(
                    "'previous_response_id' must start with \"resp_\"",
                    code="invalid_string",
                    param="previous_response_id",
                )
            with self.double.lock:
                stored = self.threads.get(previous)
            if stored is None:
                return 404, _error(
                    f"No response with id '{previous}' was found", code="not_found", param="previous_response_id"
                )
            messages = [dict(m) for m in stored]
        system = body.get("system_prompt")
        if isinstance(system, str) and system:
            messages = [m for m in messages if m["role"] != "system"]
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def handle(self, ex: Exchange) -> None:
        double = self.double
        body = ex.body if isinstance(ex.body, dict) else {}
        if not body.get("model"):
            ex.send_json(400, _error('"model" is required', code="missing_required_parameter", param="model"))
            return
        text = _input_text(body.get("input"))
        if text is None:
            ex.send_json(400, _error('"input" is required', code="missing_required_parameter", param="input"))
            return
        thread = self._thread(body)
        if isinstance(thread, tuple):
            ex.send_json(*thread)
            return
        messages = [*thread, {"role": "user", "content": text}]
        try:
            instance, window = double.resolve(body.get("model"), "llm")
        except _Refusal as refusal:  # an unknown or unloaded model, in LM Studio's wording
            ex.send_json(refusal.status, refusal.payload)
            return
        prompt = double.prompt_tokens(messages)
        if prompt > window:
            _, payload = double.overflow(prompt, window)
            ex.send_json(400, _error(str(payload.get("error")), code="context_length_exceeded"))
            return
        stream = bool(body.get("stream"))
        call = ChatCall(
            model=instance,
            requested_model=body.get("model"),
            messages=messages,
            response_format=None,
            max_tokens=body.get("max_output_tokens"),
            stream=stream,
            prompt_tokens=prompt,
            body=body,
        )
        reply = double.next_reply(call)
        with double._prediction_slot():
            started = time.perf_counter()
            thinking, answer, _ = double._budget(call, reply, window)
            time.sleep(double.latency if reply.latency is None else reply.latency)
            first = time.perf_counter() - started
            if stream:
                ex.start_stream(200)
                ex.send_event({"type": "chat.start", "model_instance_id": instance}, event="chat.start")
                for kind in ("prompt_processing.start", "prompt_processing.end"):
                    ex.send_event({"type": kind}, event=kind)
                self._send_parts(ex, "reasoning", thinking)
                self._send_parts(ex, "message", answer)
            else:
                time.sleep(double.token_latency * (len(thinking) + len(answer)))
            result = self._result(body, instance, messages, thinking, answer, prompt, first, started)
            if stream:
                ex.send_event({"type": "chat.end", "result": result}, event="chat.end", last=True)
                ex.end_stream()
            else:
                ex.send_json(200, result)

    def _send_parts(self, ex: Exchange, kind: str, tokens: list[str]) -> None:
        if not tokens:
            return
        ex.send_event({"type": f"{kind}.start"}, event=f"{kind}.start")
        for index, token in enumerate(tokens):
            if index and self.double.token_latency:
                time.sleep(self.double.token_latency)
            ex.send_event({"type": f"{kind}.delta", "content": token}, event=f"{kind}.delta")
        ex.send_event({"type": f"{kind}.end"}, event=f"{kind}.end")

    def _result(
        self,
        body: dict[str, Any],
        instance: str,
        messages: list[dict[str, Any]],
        thinking: list[str],
        answer: list[str],
        prompt: int,
        first: float,
        started: float,
    ) -> dict[str, Any]:
        generated = len(thinking) + len(answer)
        elapsed = max(time.perf_counter() - started - first, 1e-6)
        output = ([{"type": "reasoning", "content": "".join(thinking)}] if thinking else []) + [
            {"type": "message", "content": "".join(answer)}
        ]
        result: dict[str, Any] = {
            "model_instance_id": instance,
            "output": output,
            "stats": {
                "input_tokens": prompt,
                "total_output_tokens": generated,
                "reasoning_output_tokens": len(thinking),
                "tokens_per_second": round(generated / elapsed, 3),
                "time_to_first_token_seconds": round(first, 3),
            },
        }
        if body.get("store", True):
            response_id = "resp_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]
            with self.double.lock:
                self.threads[response_id] = [*messages, {"role": "assistant", "content": "".join(answer)}]
            result["response_id"] = response_id
        return result
