"""LM Studio's native, stateful chat (``POST /api/v1/chat``, LM Studio 0.4+): request body and answer parsing.

The server keeps the conversation: an answer carries a ``response_id``; the next request names it as
``previous_response_id`` and sends only what is new (the system prompt and earlier turns are already in
the thread). ``input`` is one string, so the new messages of a request are joined into it; an assistant
message among them (earlier turns of a conversation that starts a thread late) is labelled as such.
Answers carry ``stats`` (input and output tokens, tokens/s, time to first token, model load time), kept
whole in :attr:`ChatResult.server_stats`.
"""

from __future__ import annotations

from typing import Any

from ctistudio.llm.types import ChatRequest, ChatResult, Timings, Usage

CHAT_PATH = "/api/v1/chat"


def native_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The ``/api/v1/chat`` body for ``request`` (its system message becomes ``system_prompt``)."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    parts = []
    for message in request.messages:
        if message.role == "user":
            parts.append(message.content)
        elif message.role == "assistant":
            parts.append(f"(your earlier answer)\n{message.content}")
    body: dict[str, Any] = {
        "model": request.model,
        "input": "\n\n".join(parts),
        "stream": stream,
        "store": True,
        "max_output_tokens": request.max_tokens,
    }
    if system:
        body["system_prompt"] = system
    if request.previous_response_id:
        body["previous_response_id"] = request.previous_response_id
    for key in ("temperature", "top_p"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    return body


def native_result(data: dict[str, Any], *, provider: str, model: str, url: str, elapsed: float) -> ChatResult:
    """A ``/api/v1/chat`` answer (or a stream's ``chat.end`` result) as a :class:`ChatResult`."""
    output = data.get("output") or []
    text = "".join(str(o.get("content") or "") for o in output if o.get("type") == "message")
    reasoning = "".join(str(o.get("content") or "") for o in output if o.get("type") == "reasoning") or None
    stats = dict(data.get("stats") or {})
    usage = Usage(prompt_tokens=stats.get("input_tokens"), completion_tokens=stats.get("total_output_tokens"))
    timings = Timings(
        time_to_first_token=stats.get("time_to_first_token_seconds"),
        total=elapsed,
        generation_tokens_per_s=stats.get("tokens_per_second"),
    )
    return ChatResult(
        text=text.strip(),
        reasoning=reasoning,
        finish_reason="stop",
        usage=usage,
        timings=timings,
        provider=provider,
        model=data.get("model_instance_id") or model,
        url=url,
        response_id=data.get("response_id"),
        server_stats=stats,
    )
