"""Chat on a server-side thread (LM Studio 0.4's stateful ``/api/v1/chat``): what a follow-up sends.

A provider that keeps conversations (``supports_threads()``) holds everything sent before — the system
prompt, earlier questions, the numbered material and the answers. A follow-up therefore sends only the
question and the material the thread does not hold yet: sources keep the number they had (a source
retrieved again is cited by its old number, its new excerpts added under it), new sources continue the
numbering. The thread's state lives with the chat session (``chat_sessions.extra``):

    {"response_id": "resp_…", "provider": "lmstudio", "numbers": {"article:3": 1, "rule:sigmahq:…": 2},
     "chunks": [11, 12], "tokens": 2480, "message_id": 41}

It is used only while it is current — the session's last answer is the one it names (``message_id``) and
the thread still leaves room in the window; otherwise a new thread starts with the full prompt (system
prompt, recent history, material), which is also what a provider without threads always gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.llm import Gateway
from ctistudio.llm.types import Message
from ctistudio.rag.prompt import (
    MATERIAL_CLOSE,
    MATERIAL_OPEN,
    MESSAGE_OVERHEAD,
    Budget,
    Counter,
    Source,
    fill_material,
    number_sources,
    question_message,
    render_material,
    start_budget,
)
from ctistudio.rag.search import ChunkResult, RuleResult
from ctistudio.store import Store
from ctistudio.store.chat import get_chat_session

THREAD_KEY = "server_thread"
MAX_THREAD_SHARE = 0.75  # a thread using more of the window than this starts afresh (the server would cut it)
NOTHING_NEW = "(nothing new was retrieved for this question: the numbered sources above still apply)"


class ThreadState(BaseModel):
    response_id: str
    provider: str
    numbers: dict[str, int] = Field(default_factory=dict)  # source key → its number in the thread
    chunks: list[int] = Field(default_factory=list)  # article chunks the thread already holds
    tokens: int = 0  # the thread's size after the last answer (input + output tokens, the server's count)
    message_id: int = 0  # the stored answer the thread ends with


def source_key(source: Source) -> str:
    return f"article:{source.article_id}" if source.kind == "article" else f"rule:{source.rule_key or source.title}"


async def thread_provider(gateway: Gateway, provider: str) -> bool:
    """Whether ``provider`` keeps conversations server-side (LM Studio 0.4+: ``supports_threads``)."""
    probe = getattr(gateway.router(provider).providers[0], "supports_threads", None)
    return bool(probe is not None and await probe())


def load_thread(store: Store, session_id: int, provider: str, last_answer_id: int | None) -> ThreadState | None:
    """The session's thread when it is current: same provider, ending with the session's last answer."""
    with store.session() as session:
        raw = (get_chat_session(session, session_id).extra or {}).get(THREAD_KEY)
    if not raw:
        return None
    state = ThreadState.model_validate(raw)
    return state if state.provider == provider and state.message_id == last_answer_id else None


def save_thread(store: Store, session_id: int, state: ThreadState | None) -> None:
    with store.session() as session:
        chat = get_chat_session(session, session_id)
        extra = {k: v for k, v in (chat.extra or {}).items() if k != THREAD_KEY}
        if state is not None:
            extra[THREAD_KEY] = state.model_dump()
        chat.extra = extra


def next_state(previous: ThreadState | None, answer: Any, provider: str, message_id: int) -> ThreadState | None:
    """The thread after ``answer`` (a :class:`~ctistudio.rag.answer.RagAnswer`); None when it has none."""
    if not answer.response_id:
        return None
    numbers = dict(previous.numbers) if previous else {}
    chunks = set(previous.chunks) if previous else set()
    for source in answer.sources:
        numbers[source_key(source)] = source.number
        chunks.update(source.chunk_ids)
    stats = answer.server_stats or {}
    tokens = int(stats.get("input_tokens") or 0) + int(stats.get("total_output_tokens") or 0)
    return ThreadState(
        response_id=answer.response_id,
        provider=provider,
        numbers=numbers,
        chunks=sorted(chunks),
        tokens=tokens,
        message_id=message_id,
    )


def _renumber(sources: list[Source], state: ThreadState) -> list[Source]:
    """Sources numbered as the thread knows them; new ones continue after the thread's highest number."""
    following = max(state.numbers.values(), default=0) + 1
    for source in sources:
        known = state.numbers.get(source_key(source))
        if known is None:
            known, following = following, following + 1
        source.number = known
    return sorted(sources, key=lambda s: s.number)


def _unsent(source: Source, state: ThreadState) -> Source | None:
    """What of ``source`` the thread does not hold yet (None: all of it is there)."""
    if source.kind == "rule":
        return None if source_key(source) in state.numbers else source
    pairs = [(c, e) for c, e in zip(source.chunk_ids, source.excerpts, strict=False) if c not in state.chunks]
    if not pairs:
        return None
    return source.model_copy(update={"chunk_ids": [c for c, _ in pairs], "excerpts": [e for _, e in pairs]})


async def plan_continuation(
    question: str,
    items: Sequence[ChunkResult | RuleResult],
    state: ThreadState,
    *,
    count: Counter,
    context_length: int,
    max_answer_tokens: int,
) -> tuple[list[Message], list[Source], Budget] | None:
    """A follow-up's messages on the thread: new material and the question; None when the thread is too
    full for them (start a new thread instead)."""
    budget, room = start_budget(context_length, max_answer_tokens)
    fixed = state.tokens + await count(question_message(question)) + 2 * MESSAGE_OVERHEAD
    fixed += await count(f"{MATERIAL_OPEN}\n{MATERIAL_CLOSE}")
    if fixed > room * MAX_THREAD_SHARE:
        return None

    def held(item: ChunkResult | RuleResult) -> bool:  # what the thread holds costs nothing
        return item.chunk_id in state.chunks if isinstance(item, ChunkResult) else f"rule:{item.key}" in state.numbers

    chosen = await fill_material(items, room - fixed, budget, count, held)
    sources = _renumber(number_sources(chosen), state)
    unsent = [u for u in (_unsent(s, state) for s in sources) if u is not None]
    material = render_material(unsent) if unsent else f"{MATERIAL_OPEN}\n{NOTHING_NEW}\n{MATERIAL_CLOSE}"
    messages = [
        Message(role="user", content=material, truncatable=True),
        Message(role="user", content=question_message(question)),
    ]
    return messages, sources, budget
