"""Articles added through the web API are chunked and embedded at once (real embedded MiniLM).

Paste, upload, URL and a source's "fetch now" all index their new articles for chat; duplicates are not
indexed; without a reachable embedding provider the article is still stored (201) and ``chat_index``
says why it is not searchable yet.
"""

from __future__ import annotations

import socket

from ctistudio.config import load_settings
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.chunks import stored_embedding_models
from ctistudio.store.models import Chunk
from ctistudio.testing.feed_server import FeedItem, FeedServer, article_page, rss_feed

MINILM = "embedded/all-minilm-l6-v2-int8/384"
PARAGRAPHS = [
    "The loader abused certutil with -urlcache to download the second stage from a paste site at night.",
    "Persistence came from a scheduled task that ran rundll32 with an exported function every hour.",
    "Credential access followed: LSASS memory was read with comsvcs.dll MiniDump from a new service.",
]
UPLOADED = (
    "# Kerberoasting from a jump host\n\nThe intruders requested service tickets for every account with a service "
    "principal name using Rubeus, cracked the RC4 tickets offline and took over the SQL service account."
)


def indexed_articles() -> dict[int, set[str]]:
    """``{article id: embedding models of its chunks}`` in the app's store (same settings, same tmp dir)."""
    with Store(load_settings(env_file=None)) as store, store.session() as session:
        out: dict[int, set[str]] = {}
        for chunk in session.query(Chunk):
            out.setdefault(chunk.article_id, set()).add(chunk.embedding_model)
        return out


async def test_paste_upload_url_and_fetch_now_are_indexed_with_minilm(make_app, open_client):
    api = await open_client(
        make_app(
            CTISTUDIO_EMBEDDING_PROVIDER="embedded",
            CTISTUDIO_ALLOW_PRIVATE_FETCH="true",
            CTISTUDIO_FETCH_HOST_INTERVAL="0",
        )
    )
    pasted = await api.post("/api/articles", json={"text": demo_article()})
    assert pasted.status_code == 201 and pasted.json()["chat_index"] == "indexed"
    uploaded = await api.post("/api/articles/upload", files={"file": ("kerb.md", UPLOADED.encode(), "text/markdown")})
    assert uploaded.status_code == 201 and uploaded.json()["chat_index"] == "indexed", uploaded.text
    with FeedServer() as site:
        page = site.add("/report", article_page("Certutil loader", PARAGRAPHS))
        by_url = await api.post("/api/articles/url", json={"url": page})
        assert by_url.status_code == 201 and by_url.json()["chat_index"] == "indexed", by_url.text
        post = site.add(
            "/p/1", article_page("Lantern returns", [p.replace("certutil", "bitsadmin") for p in PARAGRAPHS] * 4)
        )
        feed = site.add("/feed.xml", rss_feed("Lab", [FeedItem("Lantern returns", post)]), "application/rss+xml")
        source = {"id": "lab", "name": "Lab", "url": site.url("/"), "rss_url": feed}
        assert (await api.post("/api/sources", json=source)).status_code == 201
        fetched = (await api.post("/api/sources/lab/fetch")).json()
        assert fetched["articles_new"] == 1 and fetched["chat_index"] == "indexed", fetched
        again = (await api.post("/api/sources/lab/fetch")).json()
        assert again["articles_new"] == 0 and again["chat_index"] is None

    duplicate = await api.post("/api/articles", json={"text": demo_article()})
    assert duplicate.status_code == 200 and duplicate.json()["chat_index"] is None
    ids = {pasted.json()["article_id"], uploaded.json()["article_id"], by_url.json()["article_id"]}
    indexed = indexed_articles()
    assert len(indexed) == 4 and ids < set(indexed), "every new article, no duplicate"
    assert all(models == {MINILM} for models in indexed.values())
    with Store(load_settings(env_file=None)) as store, store.session() as session:
        assert list(stored_embedding_models(session)) == [MINILM]


async def test_without_an_embedding_provider_the_article_is_stored_and_says_why(make_app, open_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    api = await open_client(
        make_app(
            CTISTUDIO_EMBEDDING_PROVIDER="lmstudio",
            LMSTUDIO_EMBEDDING_URL=f"http://127.0.0.1:{closed}/v1/embeddings",
            CTISTUDIO_RETRY_BACKOFF="0.01",
        )
    )
    pasted = await api.post("/api/articles", json={"text": demo_article()})
    assert pasted.status_code == 201, pasted.text
    body = pasted.json()
    assert body["status"] == "new" and "connection refused" in body["chat_index"]
    assert (await api.get(f"/api/articles/{body['article_id']}")).status_code == 200
    assert indexed_articles() == {}
