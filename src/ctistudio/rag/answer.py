"""Grounded answers: the retrieved material, the analyst prompt and the gateway, streamed or whole.

    answer = await generate_rag_response(query, results, provider="auto", gateway=gateway)
    answer.text, answer.sources[0].title, answer.provider, answer.timings.time_to_first_token_s

``stream_rag_response`` yields :class:`AnswerEvent` values: one ``sources`` event (what the answer may
cite, before any token), ``token`` events with text deltas, then ``done`` with the whole
:class:`RagAnswer`. With no material at all, no model is asked: the answer says plainly that the library
holds nothing on the question (and how to fill it when it is empty).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from ctistudio.llm import Gateway
from ctistudio.llm.types import ChatResult, Message
from ctistudio.rag.prompt import Source, analyst_prompt, cited_numbers, plan_prompt
from ctistudio.rag.search import ChunkResult, RuleResult, SearchResults
from ctistudio.rag.thread import ThreadState, plan_continuation

DEFAULT_CONTEXT = 8192  # assumed when the provider cannot tell the loaded window

NO_MATERIAL = (
    "The indexed articles and Sigma rules hold nothing that matches this question, so I cannot answer it "
    "from the library. Try other words (a tool, a technique, a file or registry name), or widen the filters."
)
EMPTY_LIBRARY = (
    "The library is empty: no article has been indexed and no Sigma rules are loaded, so there is nothing "
    "to answer from. Ingest articles (`ctistudio ingest …`), then run `ctistudio rag backfill`; set "
    "CTISTUDIO_SIGMA_RULES_DIR to search SigmaHQ rules too."
)


class AnswerTimings(BaseModel):
    retrieval_ms: float | None = None
    time_to_first_token_s: float | None = None
    generation_tokens_per_s: float | None = None
    total_s: float | None = None


class RagAnswer(BaseModel):
    """A grounded answer with what it cited and how it was produced."""

    question: str
    text: str
    sources: list[Source] = Field(default_factory=list)
    citations: list[int] = Field(default_factory=list)  # numbers cited that exist among the sources
    unknown_citations: list[int] = Field(default_factory=list)  # numbers cited that do not
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings: AnswerTimings = Field(default_factory=AnswerTimings)
    no_material: bool = False
    dropped_sources: int = 0  # retrieved items left out to fit the context window
    dropped_history: int = 0
    context_length: int | None = None
    prompt_version: str = ""
    # A server-side thread (LM Studio's stateful chat): the answer's response id, whether it continued the
    # session's thread (else it started one, or was stateless), and the server's own figures (``stats``).
    stateful: bool = False
    continued_thread: bool = False
    response_id: str | None = None
    server_stats: dict[str, Any] | None = None


class AnswerEvent(BaseModel):
    """One step of a streamed answer (``type``: sources → token… → done)."""

    type: Literal["sources", "token", "done"]
    text: str = ""
    sources: list[Source] | None = None
    answer: RagAnswer | None = None

    def payload(self) -> dict[str, Any]:
        """The event's data for the web (SSE ``data:``): only the fields of its type."""
        if self.type == "token":
            return {"text": self.text}
        if self.type == "sources":
            return {"sources": [s.model_dump(mode="json") for s in self.sources or []]}
        return {"answer": self.answer.model_dump(mode="json") if self.answer else None}


Retrieved = SearchResults | Sequence[ChunkResult | RuleResult]


def ranked_items(retrieved: Retrieved) -> list[ChunkResult | RuleResult]:
    """Chunks and rules in one list, most relevant first (both carry fused RRF scores on the same scale)."""
    items = list(retrieved.chunks) + list(retrieved.rules) if isinstance(retrieved, SearchResults) else list(retrieved)
    return sorted(items, key=lambda item: -item.score)


async def budget_provider(gateway: Gateway, provider: str | None) -> str:
    """The provider whose window and tokenizer the prompt is budgeted for: the one asked for, or with
    ``auto`` the first available one of the chain (availability is cached by the gateway)."""
    router = gateway.router(provider)
    if len(router.providers) == 1:
        return router.providers[0].name
    health = await router.health()
    return health.provider if health.ok else router.providers[0].name


async def _window(gateway: Gateway, provider: str) -> int:
    router = gateway.router(provider)
    model = router.providers[0].model_for("chat")
    window = await router.context_length(model) if model else None
    return window or gateway.settings.lmstudio_max_context or DEFAULT_CONTEXT


async def stream_rag_response(
    query: str,
    retrieved_chunks: Retrieved,
    provider: str | None = "auto",
    *,
    gateway: Gateway,
    history: Sequence[Message] = (),
    retrieval_ms: float | None = None,
    empty_library: bool = False,
    stateful: bool = False,
    thread: ThreadState | None = None,
) -> AsyncIterator[AnswerEvent]:
    """Stream a grounded answer to ``query`` from ``retrieved_chunks`` (see the module docstring).

    ``stateful``: answer on a server-side thread (the provider must keep threads); ``thread``: continue
    that one, sending only the question and new material (:mod:`ctistudio.rag.thread`)."""
    provider = provider or None
    answer = RagAnswer(question=query, text="", prompt_version=analyst_prompt().ref)
    answer.timings.retrieval_ms = retrieval_ms
    items = ranked_items(retrieved_chunks)
    if not items:
        answer.text, answer.no_material = (EMPTY_LIBRARY if empty_library else NO_MATERIAL), True
        yield AnswerEvent(type="sources", sources=[])
        yield AnswerEvent(type="token", text=answer.text)
        yield AnswerEvent(type="done", answer=answer)
        return
    settings = gateway.settings
    budgeted = await budget_provider(gateway, provider)
    window = await _window(gateway, budgeted)

    async def count(text: str) -> int:
        return await gateway.count_tokens(text, provider=budgeted)

    planned = None
    if thread is not None:
        planned = await plan_continuation(
            query, items, thread, count=count, context_length=window, max_answer_tokens=settings.rag_max_answer_tokens
        )
    answer.stateful, answer.continued_thread = stateful, planned is not None
    messages, sources, budget = planned or await plan_prompt(
        query, items, history, count=count, context_length=window, max_answer_tokens=settings.rag_max_answer_tokens
    )
    previous = thread.response_id if planned is not None and thread is not None else None
    answer.sources, answer.context_length = sources, window
    answer.dropped_sources, answer.dropped_history = budget.dropped_items, budget.dropped_history
    yield AnswerEvent(type="sources", sources=sources)
    started = time.perf_counter()
    first_token: float | None = None
    parts: list[str] = []
    result: ChatResult | None = None
    deltas = gateway.stream(
        messages,
        task="chat",
        provider=provider,
        max_tokens=budget.reserved_for_answer,
        stateful=stateful,
        previous_response_id=previous,
    )
    async for delta in deltas:
        if delta.text:
            first_token = first_token or time.perf_counter()
            parts.append(delta.text)
            yield AnswerEvent(type="token", text=delta.text)
        if delta.done:
            result = delta.result
    finish(answer, "".join(parts) if parts or result is None else result.text, result)
    answer.timings.total_s = round(time.perf_counter() - started, 3)
    if answer.timings.time_to_first_token_s is None and first_token is not None:
        answer.timings.time_to_first_token_s = round(first_token - started, 3)
    yield AnswerEvent(type="done", answer=answer)


def finish(answer: RagAnswer, text: str, result: ChatResult | None) -> None:
    """Fill in the text, citations and the provider's figures."""
    answer.text = text.strip()
    numbers = {s.number for s in answer.sources}
    cited = cited_numbers(answer.text)
    answer.citations = [n for n in cited if n in numbers]
    answer.unknown_citations = [n for n in cited if n not in numbers]
    for source in answer.sources:
        source.cited = source.number in answer.citations
    if result is not None:
        answer.provider, answer.model = result.provider, result.model
        answer.prompt_tokens, answer.completion_tokens = result.usage.prompt_tokens, result.usage.completion_tokens
        answer.timings.time_to_first_token_s = result.timings.time_to_first_token
        answer.timings.generation_tokens_per_s = result.timings.generation_tokens_per_s
        answer.response_id, answer.server_stats = result.response_id, result.server_stats


async def generate_rag_response(
    query: str,
    retrieved_chunks: Retrieved,
    provider: str | None = "auto",
    *,
    gateway: Gateway,
    history: Sequence[Message] = (),
    retrieval_ms: float | None = None,
) -> RagAnswer:
    """The seed's call: a grounded, cited answer to ``query`` from ``retrieved_chunks`` on ``provider``."""
    answer: RagAnswer | None = None
    async for event in stream_rag_response(
        query, retrieved_chunks, provider, gateway=gateway, history=history, retrieval_ms=retrieval_ms
    ):
        if event.type == "done":
            answer = event.answer
    assert answer is not None
    return answer
