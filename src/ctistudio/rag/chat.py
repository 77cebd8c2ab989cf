"""The conversation API: sessions that keep their last N turns, any provider per question.

    service = ChatService(store, gateway)
    reply = await service.ask("Which LOLBins did the actor use?", provider="lmstudio")
    reply.session_id, reply.answer.text, reply.answer.sources
    async for event in service.ask_stream("And how do I detect that?", session_id=reply.session_id, provider="auto"):
        ...  # ChatEvent: session, sources, token…, done

Every turn is stored (``chat_sessions`` / ``chat_messages``); an assistant turn records the citations, the
provider and model that answered, token counts and timings (retrieval, time to first token, tokens/s).
The history sent with a question is the session's last ``CTISTUDIO_RAG_HISTORY_TURNS`` turns, whatever
provider produced them, so switching provider mid-conversation keeps the context.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel

from ctistudio.errors import CtiStudioError, InvalidInput
from ctistudio.llm import Gateway, LLMError
from ctistudio.llm.types import Message
from ctistudio.rag.answer import RagAnswer, budget_provider, stream_rag_response
from ctistudio.rag.prompt import Source, strip_citations
from ctistudio.rag.search import Retriever, SearchFilters, SearchResults
from ctistudio.rag.thread import load_thread, next_state, save_thread, thread_provider
from ctistudio.store import Store
from ctistudio.store.chat import (
    NewChatMessage,
    add_chat_message,
    chat_messages,
    create_chat_session,
    get_chat_session,
    list_chat_sessions,
    recent_chat_messages,
)

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 4000


class ChatReply(BaseModel):
    session_id: int
    message_id: int
    answer: RagAnswer


class ChatEvent(BaseModel):
    """One event of a streamed reply, in this order: ``session``, ``sources``, ``token``…, ``done``."""

    type: Literal["session", "sources", "token", "done", "error"]
    data: dict[str, Any]

    def sse(self) -> str:
        """The event as a Server-Sent Events frame (``event: <type>`` + one ``data:`` line of JSON)."""
        return f"event: {self.type}\ndata: {json.dumps(self.data, ensure_ascii=False, default=str)}\n\n"


class TranscriptMessage(BaseModel):
    id: int
    role: str
    content: str
    citations: list[Any]
    provider: str | None
    model: str | None
    timings: dict[str, Any]
    created_at: str


class ChatService:
    """Answers questions in sessions. One per process is enough (it holds the retriever's caches)."""

    def __init__(self, store: Store, gateway: Gateway, *, retriever: Retriever | None = None) -> None:
        self.store = store
        self.gateway = gateway
        self.retriever = retriever or Retriever(store, gateway)
        self.settings = gateway.settings

    # -- sessions ----------------------------------------------------------------------------------
    def new_session(self, title: str | None = None) -> int:
        with self.store.session() as session:
            return create_chat_session(session, title=title).id

    def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.session() as session:
            return [
                {
                    "id": chat.id,
                    "title": chat.title,
                    "provider": chat.provider,
                    "messages": count,
                    "updated_at": chat.updated_at.isoformat(),
                }
                for chat, count in list_chat_sessions(session, limit=limit)
            ]

    def transcript(self, session_id: int) -> list[TranscriptMessage]:
        with self.store.session() as session:
            return [
                TranscriptMessage(
                    id=m.id,
                    role=m.role,
                    content=m.content,
                    citations=m.citations,
                    provider=m.provider,
                    model=m.model,
                    timings=m.timings,
                    created_at=m.created_at.isoformat(),
                )
                for m in chat_messages(session, session_id)
            ]

    def _history(self, session_id: int) -> tuple[list[Message], str | None]:
        """The last turns as messages (citation markers removed), and the previous question."""
        turns = self.settings.rag_history_turns
        with self.store.session() as session:
            get_chat_session(session, session_id)
            rows = recent_chat_messages(session, session_id, limit=turns * 2) if turns else []
        history = [
            Message(role=r.role, content=strip_citations(r.content) if r.role == "assistant" else r.content)
            for r in rows
            if r.role in ("user", "assistant") and r.content.strip()
        ]
        previous = next((m.content for m in reversed(history) if m.role == "user"), None)
        return history, previous

    # -- questions ---------------------------------------------------------------------------------
    async def ask(
        self,
        question: str,
        *,
        session_id: int | None = None,
        provider: str | None = None,
        filters: SearchFilters | None = None,
    ) -> ChatReply:
        """Answer ``question`` (in a new session unless ``session_id``) and store both turns."""
        reply: ChatReply | None = None
        async for event in self.ask_stream(question, session_id=session_id, provider=provider, filters=filters):
            if event.type == "done":
                reply = ChatReply.model_validate(event.data)
        assert reply is not None
        return reply

    async def ask_stream(
        self,
        question: str,
        *,
        session_id: int | None = None,
        provider: str | None = None,
        filters: SearchFilters | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """Stream the answer to ``question`` as :class:`ChatEvent` values (errors raise)."""
        question = question.strip()
        if not question:
            raise InvalidInput("the question is empty", fix="Ask something, e.g. 'Which tools did the actor use?'")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidInput(
                f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}",
                fix="Ask a shorter question; to analyse a whole article, ingest it and ask about it.",
            )
        if session_id is None:
            session_id = self.new_session(title=question[:120])
        history, previous = self._history(session_id)
        yield ChatEvent(type="session", data={"session_id": session_id})
        started = time.perf_counter()
        results = await self.retriever.search(question, filters=filters)
        if results.empty and previous:  # a follow-up ("and on Linux?") may need the earlier question's words
            results = await self.retriever.search(f"{previous}\n{question}", filters=filters)
        retrieval_ms = round((time.perf_counter() - started) * 1000, 2)
        last_answer = self._last_answer_id(session_id)
        with self.store.session() as session:
            add_chat_message(session, session_id, NewChatMessage(role="user", content=question))
        # A provider that keeps server-side threads (LM Studio 0.4+) gets only what is new on a follow-up.
        chosen = await budget_provider(self.gateway, provider or None) if not results.empty else None
        threaded = self.settings.chat_threads and chosen is not None and await thread_provider(self.gateway, chosen)
        thread = load_thread(self.store, session_id, chosen, last_answer) if threaded and chosen else None
        answer: RagAnswer | None = None
        for attempt in (thread, None) if thread is not None else (None,):
            tokens = 0
            try:
                async for event in stream_rag_response(
                    question,
                    results,
                    chosen if threaded else provider,
                    gateway=self.gateway,
                    history=history,
                    retrieval_ms=retrieval_ms,
                    empty_library=_library_empty(results),
                    stateful=threaded,
                    thread=attempt,
                ):
                    if event.type == "sources":
                        yield ChatEvent(type="sources", data=event.payload())
                    elif event.type == "token":
                        tokens += 1
                        yield ChatEvent(type="token", data=event.payload())
                    else:
                        answer = event.answer
                break
            except LLMError as error:  # the server lost the thread (restarted?): answer on a new one
                if attempt is None or tokens:
                    raise
                log.info(
                    "chat session %s: thread %s refused (%s); starting a new one",
                    session_id,
                    attempt.response_id,
                    error.message,
                )
        assert answer is not None
        message_id = self._store_answer(session_id, answer)
        if threaded and chosen:
            if answer.no_material and thread is not None:  # no model was asked: the thread is still current
                save_thread(self.store, session_id, thread.model_copy(update={"message_id": message_id}))
            else:
                kept = thread if answer.continued_thread else None
                save_thread(self.store, session_id, next_state(kept, answer, chosen, message_id))
        reply = ChatReply(session_id=session_id, message_id=message_id, answer=answer)
        yield ChatEvent(type="done", data=reply.model_dump(mode="json"))

    def _last_answer_id(self, session_id: int) -> int | None:
        with self.store.session() as session:
            rows = recent_chat_messages(session, session_id, limit=2)
        return next((r.id for r in reversed(rows) if r.role == "assistant"), None)

    def _store_answer(self, session_id: int, answer: RagAnswer) -> int:
        record = NewChatMessage(
            role="assistant",
            content=answer.text,
            citations=[_citation(s) for s in answer.sources],
            provider=answer.provider,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            timings={**answer.timings.model_dump(), **({"server": answer.server_stats} if answer.server_stats else {})},
        )
        with self.store.session() as session:
            return add_chat_message(session, session_id, record).id


def _library_empty(results: SearchResults) -> bool:
    return results.corpus_chunks == 0 and results.corpus_rules == 0


def _citation(source: Source) -> dict[str, Any]:
    """What a stored assistant turn keeps of a source (enough to link it without the excerpts)."""
    return source.model_dump(mode="json", exclude={"excerpts"})


async def sse_stream(events: AsyncIterator[ChatEvent]) -> AsyncIterator[str]:
    """SSE frames of ``events``; a ctistudio error becomes a final ``error`` event (message and fix)."""
    try:
        async for event in events:
            yield event.sse()
    except CtiStudioError as error:
        yield ChatEvent(type="error", data={"message": error.message, "fix": error.fix}).sse()
