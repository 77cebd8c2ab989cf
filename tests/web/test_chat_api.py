"""RAG chat through the API: indexed on ingest, answered with citations, streamed as SSE, stored in sessions."""

from __future__ import annotations

import json

import pytest

from ctistudio.resources import demo_article
from ctistudio.testing.lmstudio_double import ChatCall, LMStudioDouble

ANSWER = "The loader ran from OneNote: ONENOTE.EXE spawned mshta.exe [1]."


def answer_from_library(call: ChatCall) -> str | None:
    return ANSWER if "threat-intelligence analyst's assistant" in call.system else None


@pytest.fixture
def lms():
    with LMStudioDouble() as double:
        double.responder = answer_from_library
        yield double


@pytest.fixture
async def api(make_app, open_client, lms):
    return await open_client(make_app(**lms.env(), LLM_PROVIDER="lmstudio", CTISTUDIO_EMBEDDING_PROVIDER="lmstudio"))


def sse_frames(body: str) -> list[tuple[str, dict]]:
    frames = []
    for block in body.strip().split("\n\n"):
        kind = next(line[7:] for line in block.splitlines() if line.startswith("event: "))
        data = "".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        frames.append((kind, json.loads(data)))
    return frames


async def test_pasted_article_is_indexed_and_cited(api):
    pasted = (await api.post("/api/articles", json={"text": demo_article()})).json()
    assert pasted["chat_index"] == "indexed"
    reply = (await api.post("/api/chat", json={"question": "Which process spawned mshta.exe?"})).json()
    answer = reply["answer"]
    assert answer["text"] == ANSWER and answer["citations"] == [1]
    assert answer["sources"][0]["article_id"] == pasted["article_id"]
    assert answer["provider"] == "lmstudio" and answer["timings"]["retrieval_ms"] is not None
    turns = (await api.get(f"/api/chat/sessions/{reply['session_id']}")).json()
    assert [t["role"] for t in turns] == ["user", "assistant"] and turns[1]["citations"]


async def test_streamed_answer_arrives_as_events_in_order(api):
    await api.post("/api/articles", json={"text": demo_article()})
    async with api.stream("POST", "/api/chat/stream", json={"question": "What did OneNote spawn?"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    frames = sse_frames(body)
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "session" and kinds[1] == "sources" and kinds[-1] == "done"
    tokens = [data["text"] for kind, data in frames if kind == "token"]
    assert len(tokens) > 3 and "".join(tokens) == ANSWER  # streamed piece by piece
    follow_up = await api.post(
        "/api/chat", json={"question": "And then?", "session_id": frames[0][1]["session_id"], "provider": "lmstudio"}
    )
    assert follow_up.status_code == 200


async def test_chat_input_limits_and_errors(api):
    too_long = await api.post("/api/chat", json={"question": "x" * 5000})
    assert too_long.status_code == 422 and "question" in too_long.json()["detail"]
    unknown = await api.post("/api/chat", json={"question": "hi", "provider": "nosuch"})
    assert unknown.status_code == 400 and "nosuch" in unknown.json()["detail"]
    assert (await api.get("/api/chat/sessions/999")).status_code == 404
