"""RAG chat: ``POST /api/chat`` (whole answer), ``POST /api/chat/stream`` (SSE), sessions, indexing, page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ctistudio.llm.providers import provider_names
from ctistudio.web import chat_views as views
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/chat", tags=["chat"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

SessionId = Annotated[int, Path(ge=1, le=2**53)]


@api.post("")
async def chat(ctx: CtxDep, body: views.ChatRequest) -> dict[str, Any]:
    """Answer a question from the library (articles and Sigma rules) with numbered citations."""
    return await views.ask(ctx, body)


@api.post("/stream", response_class=StreamingResponse)
async def chat_stream(ctx: CtxDep, body: views.ChatRequest) -> StreamingResponse:
    """The same, streamed as Server-Sent Events: ``session``, ``sources``, ``token``…, ``done`` (or ``error``)."""
    return StreamingResponse(
        views.stream(ctx, body),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@api.get("/sessions")
async def chat_sessions(ctx: CtxDep) -> list[dict[str, Any]]:
    return views.sessions(ctx)


@api.get("/sessions/{session_id}")
async def chat_transcript(ctx: CtxDep, session_id: SessionId) -> list[dict[str, Any]]:
    """Every turn of a session; assistant turns carry citations, provider, model and timings."""
    return views.transcript(ctx, session_id)


@api.post("/index", response_model=views.IndexResult)
async def index_library(ctx: CtxDep):
    """Make every article not indexed yet searchable by chat (chunks and embeddings)."""
    return await views.index_articles(ctx, None)


@pages.get("/chat")
async def chat_page(request: Request, ctx: CtxDep, session: int | None = None) -> Response:
    service = ctx.chat()
    current = views.transcript(ctx, session) if session else []
    return request.app.state.templates.TemplateResponse(
        request,
        "chat.html",
        {
            "providers": ["auto", *provider_names()],
            "default_provider": ctx.settings().llm_provider,
            "sessions": service.sessions(),
            "session_id": session,
            "transcript": current,
        },
    )
