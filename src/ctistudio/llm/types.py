"""Typed values that cross the LLM layer's boundary: requests, results, stream deltas, model facts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Task(StrEnum):
    """What a call is for; the router resolves each task to a model (``LMSTUDIO_MODEL_RANK`` …)."""

    RANK = "rank"
    EXTRACT = "extract"
    SIGMA = "sigma"
    CHAT = "chat"
    EMBED = "embed"


class Message(BaseModel):
    """One chat message. ``truncatable`` marks the variable part (the article) that context fitting may cut."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str
    truncatable: bool = False


class ChatRequest(BaseModel):
    """A chat completion request, independent of any vendor's wire format.

    ``response_schema`` is a JSON Schema (dict); when set, providers ask for structured output and the
    result's ``parsed`` holds the decoded JSON. ``model`` may be left empty: the router fills it from the
    task's configured model.
    """

    model_config = ConfigDict(extra="forbid")

    messages: list[Message]
    task: Task = Task.CHAT
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int = Field(default=1024, ge=1)
    response_schema: dict[str, Any] | None = None
    schema_name: str = "result"
    stop: list[str] | None = None
    timeout: float | None = None
    # A server-side conversation (LM Studio 0.4's /api/v1/chat): ``stateful`` asks the provider to keep the
    # thread and return its ``response_id``; ``previous_response_id`` continues one, so ``messages`` hold
    # only what is new. Providers without threads never see such a request (see ``supports_threads``).
    stateful: bool = False
    previous_response_id: str | None = None

    def prompt_text(self) -> str:
        """All message contents joined: what token counting and overflow budgeting look at."""
        return "\n".join(m.content for m in self.messages)


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server took from its prefix cache


class Timings(BaseModel):
    """Wall-clock figures measured by the client (seconds); ``*_per_s`` derived where tokens are known."""

    time_to_first_token: float | None = None
    total: float = 0.0
    generation_tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None


class ContextFit(BaseModel):
    """What context fitting did to a request before it was sent."""

    context_length: int | None = None
    prompt_tokens: int | None = None  # estimated or counted, after fitting
    reserved_for_output: int = 0
    truncated_chars: int = 0  # 0 when nothing was cut


class ChatResult(BaseModel):
    """One answer, whatever provider produced it."""

    text: str
    parsed: Any = None
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    provider: str
    model: str
    url: str | None = None
    fit: ContextFit | None = None
    attempts: int = 1
    response_id: str | None = None  # the server-side thread's point after this answer (stateful requests)
    server_stats: dict[str, Any] | None = None  # the server's own figures, as it sent them (LM Studio ``stats``)


class StreamDelta(BaseModel):
    """A piece of a streamed answer. The last delta has ``done=True`` and carries the full ``result``."""

    text: str = ""
    done: bool = False
    result: ChatResult | None = None


class ModelInfo(BaseModel):
    """A model a provider knows about; ``context_length`` is the LOADED window when the server says."""

    id: str
    provider: str
    loaded: bool | None = None
    context_length: int | None = None
    max_context_length: int | None = None
    type: str | None = None  # llm | embedding | vlm
    quantization: str | None = None
    format: str | None = None  # gguf | mlx
    size_bytes: int | None = None
    instances: list[str] = Field(default_factory=list)
    instance_context_lengths: dict[str, int] = Field(default_factory=dict)  # loaded instance id → its window


class Health(BaseModel):
    """Whether a provider can take requests now, and in one line why not."""

    provider: str
    ok: bool
    detail: str = ""
    url: str | None = None
    latency_s: float | None = None
    fix: str | None = None  # what to do when not ok


class EmbeddingResult(BaseModel):
    vectors: list[list[float]]
    model: str
    provider: str
    dimensions: int
