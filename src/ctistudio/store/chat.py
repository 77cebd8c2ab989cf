"""Chat sessions and their messages: the conversation memory of the RAG chat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctistudio.errors import NotFound
from ctistudio.store.models import ChatMessage, ChatSession
from ctistudio.store.types import utcnow

CHAT_ROLES = ("user", "assistant")


@dataclass
class NewChatMessage:
    role: str
    content: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings: dict[str, Any] = field(default_factory=dict)


def create_chat_session(session: Session, *, title: str | None = None, provider: str | None = None) -> ChatSession:
    chat = ChatSession(title=(title or "")[:500] or None, provider=provider)
    session.add(chat)
    session.flush()
    return chat


def get_chat_session(session: Session, session_id: int) -> ChatSession:
    chat = session.get(ChatSession, session_id)
    if chat is None:
        raise NotFound(f"no chat session with id {session_id}", fix="Start a new chat (omit the session id).")
    return chat


def add_chat_message(session: Session, session_id: int, new: NewChatMessage) -> ChatMessage:
    """Append a message to a session (and remember the session's last provider)."""
    if new.role not in CHAT_ROLES:
        raise ValueError(f"unknown chat role {new.role!r}; allowed: {', '.join(CHAT_ROLES)}")
    chat = get_chat_session(session, session_id)
    message = ChatMessage(
        session_id=session_id,
        role=new.role,
        content=new.content,
        citations=new.citations,
        provider=new.provider,
        model=new.model,
        prompt_tokens=new.prompt_tokens,
        completion_tokens=new.completion_tokens,
        timings=new.timings,
    )
    session.add(message)
    if new.provider:
        chat.provider = new.provider
    chat.updated_at = utcnow()
    session.flush()
    return message


def recent_chat_messages(session: Session, session_id: int, *, limit: int) -> list[ChatMessage]:
    """The last ``limit`` messages of a session, oldest first."""
    query = select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id.desc()).limit(limit)
    return list(reversed(list(session.scalars(query))))


def chat_messages(session: Session, session_id: int) -> list[ChatMessage]:
    get_chat_session(session, session_id)
    query = select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
    return list(session.scalars(query))


def list_chat_sessions(session: Session, *, limit: int = 50) -> list[tuple[ChatSession, int]]:
    """Recent sessions, newest first, with their number of messages."""
    counts = select(ChatMessage.session_id, func.count().label("n")).group_by(ChatMessage.session_id).subquery()
    query = (
        select(ChatSession, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.session_id == ChatSession.id)
        .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
        .limit(limit)
    )
    return [(chat, int(n)) for chat, n in session.execute(query)]
