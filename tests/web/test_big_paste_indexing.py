"""A big paste answers before its chunks are embedded: the article is indexed for chat by a background job."""

from __future__ import annotations

from tests.web.test_ingest_indexing import MINILM, PARAGRAPHS, indexed_articles

from ctistudio.web.chat_views import INLINE_INDEX_CHARS


async def test_big_paste_is_indexed_after_the_response(make_app, open_client):
    app = make_app(CTISTUDIO_EMBEDDING_PROVIDER="embedded")
    api = await open_client(app)
    text = "# A long report\n\n" + "\n\n".join(PARAGRAPHS * (INLINE_INDEX_CHARS // 250))
    assert len(text) > INLINE_INDEX_CHARS
    pasted = await api.post("/api/articles", json={"text": text})
    assert pasted.status_code == 201, pasted.text
    article_id = pasted.json()["article_id"]
    assert pasted.json()["chat_index"].startswith("indexing in the background")
    await app.state.ctx.background.drain()
    assert indexed_articles()[article_id] == {MINILM}


def test_worker_process_scores_like_this_process():
    """The biggest pastes are scored in a spawned worker process: same result, another process."""
    import os

    from ctistudio.ingest.intake import ArticleCandidate, prepare_candidate
    from ctistudio.web.offload import WorkerProcess

    candidate = ArticleCandidate(title="Lantern", text="\n\n".join(PARAGRAPHS * 20), origin="text")
    worker = WorkerProcess()
    try:
        assert worker.run(os.getpid) != os.getpid()
        assert worker.run(prepare_candidate, candidate) == prepare_candidate(candidate)
    finally:
        worker.close()
