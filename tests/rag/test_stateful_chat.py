"""LM Studio's stateful chat: the double's /api/v1/chat, the provider, and chat follow-ups on a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.rag import ChatService, backfill
from ctistudio.rag.prompt import MATERIAL_OPEN, analyst_prompt
from ctistudio.store import Store
from ctistudio.store.chat import chat_messages
from ctistudio.testing.lmstudio_double import LMStudioDouble

from .conftest import add_corpus

NATIVE = "/api/v1/chat"
CHAT = "/v1/chat/completions"
MODEL = "qwen/qwen3-4b-2507"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:  # SQLite only: the thread logic does not depend on the database
    with Store(url=f"sqlite:///{tmp_path / 'chat.db'}") as opened:
        yield opened


def test_the_double_keeps_threads_as_lm_studio_documents(lmstudio_double: LMStudioDouble):
    seen: list[list[dict]] = []
    lmstudio_double.responder = lambda call: seen.append(call.messages) or f"answer {len(seen)}"
    with httpx.Client(base_url=lmstudio_double.root_url) as client:
        first = client.post(NATIVE, json={"model": MODEL, "input": "My colour is blue.", "system_prompt": "Be brief."})
        assert first.status_code == 200
        body = first.json()
        assert body["output"] == [{"type": "message", "content": "answer 1"}]
        assert body["response_id"].startswith("resp_") and body["model_instance_id"] == MODEL
        assert set(body["stats"]) == {
            "input_tokens",
            "total_output_tokens",
            "reasoning_output_tokens",
            "tokens_per_second",
            "time_to_first_token_seconds",
        }
        second = client.post(
            NATIVE, json={"model": MODEL, "input": "Which colour?", "previous_response_id": body["response_id"]}
        ).json()
        assert seen[1] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "My colour is blue."},
            {"role": "assistant", "content": "answer 1"},
            {"role": "user", "content": "Which colour?"},
        ]
        assert second["stats"]["input_tokens"] > body["stats"]["input_tokens"], "the thread counts as input"
        unknown = client.post(NATIVE, json={"model": MODEL, "input": "x", "previous_response_id": "resp_nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "previous_response_id"
        assert client.post(NATIVE, json={"input": "x"}).json()["error"]["code"] == "missing_required_parameter"
        assert "response_id" not in client.post(NATIVE, json={"model": MODEL, "input": "x", "store": False}).json()
        with client.stream("POST", NATIVE, json={"model": MODEL, "input": "stream it", "stream": True}) as streamed:
            events = [line.removeprefix("event: ") for line in streamed.iter_lines() if line.startswith("event: ")]
        assert events[0] == "chat.start" and events[-1] == "chat.end"
        assert events.index("message.start") < events.index("message.delta") < events.index("message.end")


def test_an_lm_studio_older_than_0_4_has_no_native_chat():
    with LMStudioDouble(api_version="v0") as old, httpx.Client(base_url=old.root_url) as client:
        answer = client.post(NATIVE, json={"model": MODEL, "input": "x"})
        assert answer.status_code == 200 and "Unexpected endpoint" in answer.json()["error"]


async def test_the_provider_uses_the_native_chat_for_stateful_requests(lmstudio_double: LMStudioDouble):
    lmstudio_double.reply("first", "second")
    async with Gateway(load_settings(env_file=None)) as gateway:
        provider = gateway.provider("lmstudio")
        assert await provider.supports_threads() is True
        first = await gateway.chat("Hello", system="Be brief.", provider="lmstudio", stateful=True)
        assert first.text == "first" and first.response_id and first.server_stats["input_tokens"] > 0
        second = await gateway.chat("Again", provider="lmstudio", stateful=True, previous_response_id=first.response_id)
        assert second.text == "second" and second.usage.prompt_tokens == second.server_stats["input_tokens"]
    assert [r.body.get("previous_response_id") for r in lmstudio_double.requests_to(NATIVE)] == [
        None,
        first.response_id,
    ]
    assert lmstudio_double.requests_to(CHAT) == []
    with LMStudioDouble(api_version="v0") as old:
        settings = load_settings(env_file=None).model_copy(update={"lmstudio_api_url": old.url})
        async with Gateway(settings) as gateway:
            assert await gateway.provider("lmstudio").supports_threads() is False


@pytest.fixture
async def chat(store, corpus, lmstudio_double, monkeypatch) -> ChatService:
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    monkeypatch.setenv("CTISTUDIO_EMBEDDED", "false")
    add_corpus(store, corpus)
    gateway = Gateway(load_settings(env_file=None))
    service = ChatService(store, gateway)
    await backfill(service.retriever)
    yield service
    await gateway.aclose()


QUESTIONS = [
    "Which LOLBins did the actor use to download payloads with certutil?",
    "And how did they keep persistence?",
    "Which command lines should I hunt for certutil?",
]


async def test_follow_ups_send_only_what_the_thread_lacks(chat: ChatService, lmstudio_double: LMStudioDouble):
    session_id = None
    replies = []
    for number, question in enumerate(QUESTIONS):
        lmstudio_double.reply(f"Answer {number} [1].")
        reply = await chat.ask(question, session_id=session_id, provider="lmstudio")
        session_id = reply.session_id
        replies.append(reply.answer)
    sent = [r.body for r in lmstudio_double.requests_to(NATIVE)]
    assert len(sent) == 3 and lmstudio_double.requests_to(CHAT) == []
    assert sent[0]["system_prompt"] == analyst_prompt().text and "previous_response_id" not in sent[0]
    assert sent[0]["input"].startswith(MATERIAL_OPEN) and sent[0]["input"].endswith(QUESTIONS[0])
    for turn in (1, 2):
        assert sent[turn]["previous_response_id"] == replies[turn - 1].response_id
        assert "system_prompt" not in sent[turn]
        assert QUESTIONS[turn - 1] not in sent[turn]["input"], "earlier turns stay on the server"
        assert sent[turn]["input"].endswith(QUESTIONS[turn])
        assert replies[turn].continued_thread and replies[turn].stateful
    thread = lmstudio_double.native_chat.threads[replies[2].response_id]
    assert [m["content"] for m in thread if m["role"] == "assistant"] == [
        "Answer 0 [1].",
        "Answer 1 [1].",
        "Answer 2 [1].",
    ]
    # a source retrieved again keeps its number; its excerpts are not sent twice
    first_numbers = {s.article_id: s.number for s in replies[0].sources if s.kind == "article"}
    for source in replies[2].sources:
        if source.kind == "article" and source.article_id in first_numbers:
            assert source.number == first_numbers[source.article_id]
    assert len(sent[2]["input"]) < len(sent[0]["input"]) / 2
    assert replies[2].server_stats["input_tokens"] > replies[0].server_stats["input_tokens"]
    with chat.store.session() as session:
        stored = [m for m in chat_messages(session, session_id) if m.role == "assistant"]
    assert stored[-1].timings["server"]["input_tokens"] == replies[2].server_stats["input_tokens"]


async def test_a_thread_the_server_lost_is_replaced_by_a_new_one(chat: ChatService, lmstudio_double: LMStudioDouble):
    first = await chat.ask(QUESTIONS[0], provider="lmstudio")
    lmstudio_double.native_chat.threads.clear()  # LM Studio restarted
    second = await chat.ask(QUESTIONS[1], session_id=first.session_id, provider="lmstudio")
    refused, fresh = [r for r in lmstudio_double.requests_to(NATIVE)][1:]
    assert refused.status == 404 and fresh.status == 200
    assert "previous_response_id" not in fresh.body and fresh.body["system_prompt"] == analyst_prompt().text
    assert QUESTIONS[0] in fresh.body["input"], "the new thread starts with the session's history"
    assert second.answer.response_id and not second.answer.continued_thread


async def test_without_native_chat_follow_ups_send_the_history(store, corpus, monkeypatch):
    with LMStudioDouble(api_version="v0") as old:
        for key, value in old.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
        monkeypatch.setenv("CTISTUDIO_EMBEDDED", "false")
        add_corpus(store, corpus)
        async with Gateway(load_settings(env_file=None)) as gateway:
            service = ChatService(store, gateway)
            await backfill(service.retriever)
            first = await service.ask(QUESTIONS[0], provider="lmstudio")
            second = await service.ask(QUESTIONS[1], session_id=first.session_id, provider="lmstudio")
        messages = old.requests_to(CHAT)[-1].body["messages"]
        assert [m["content"] for m in messages[1:3]] == [QUESTIONS[0], first.answer.text]
        assert second.answer.response_id is None and not second.answer.stateful


async def test_the_cli_shows_the_servers_figures_with_the_answer(chat: ChatService, lmstudio_double, capsys):
    from ctistudio.cli.chat import print_reply_footer

    first = await chat.ask(QUESTIONS[0], provider="lmstudio")
    second = await chat.ask(QUESTIONS[1], session_id=first.session_id, provider="lmstudio")
    print_reply_footer(second)
    shown = " ".join(capsys.readouterr().out.split())
    stats = second.answer.server_stats
    assert "thread continued" in shown
    assert f"server: {stats['input_tokens']:,} input / {stats['total_output_tokens']:,} output tokens" in shown
