"""One real answer from the packaged local model (Qwen2.5-Coder-0.5B on the embedded engine)."""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.rag import ChatService, backfill
from ctistudio.store import Store

from .conftest import add_corpus


@pytest.mark.slow
@pytest.mark.native
async def test_embedded_model_answers_from_the_material(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "embedded")
    monkeypatch.setenv("CTISTUDIO_RAG_TOP_K", "4")
    monkeypatch.setenv("CTISTUDIO_RAG_MAX_ANSWER_TOKENS", "160")
    settings = load_settings(env_file=None)
    with Store(url=f"sqlite:///{tmp_path / 'local.db'}") as store:
        ids = add_corpus(store, corpus)
        async with Gateway(settings) as gateway:
            service = ChatService(store, gateway)
            await backfill(service.retriever)
            tokens = []
            reply = None
            async for event in service.ask_stream(
                "Which commands did the ransomware run to delete shadow copies?", provider="embedded"
            ):
                if event.type == "token":
                    tokens.append(event.data["text"])
                elif event.type == "done":
                    reply = event.data
    assert reply is not None
    answer = reply["answer"]
    assert answer["provider"] == "embedded" and answer["model"]
    assert answer["sources"][0]["article_id"] == ids["vssadmin"]
    assert len(tokens) > 3 and "".join(tokens).strip() == answer["text"]
    assert "vssadmin" in answer["text"].lower(), answer["text"]
    assert answer["timings"]["time_to_first_token_s"] > 0 and answer["timings"]["generation_tokens_per_s"] > 0
