"""Manual ingestion through the API: paste, duplicates, upload and URL limits (the ingest service)."""

from __future__ import annotations

from ctistudio.resources import demo_article


async def test_paste_then_paste_again(client):
    first = await client.post("/api/articles", json={"text": demo_article()})
    assert first.status_code == 201 and first.json()["status"] == "new"
    article_id = first.json()["article_id"]
    again = await client.post("/api/articles", json={"text": demo_article()})
    assert again.status_code == 200 and again.json()["status"] in ("exists", "duplicate")
    listed = (await client.get("/api/articles", params={"search": "lantern"})).json()
    assert [a["id"] for a in listed["items"]] == [article_id]
    detail = (await client.get(f"/api/articles/{article_id}")).json()
    assert detail["hunt_score"] > 0 and detail["hunt_evidence"] and "windows" in detail["platforms"]
    page = await client.get(f"/articles/{article_id}")
    assert page.status_code == 200 and '<mark class="evidence"' in page.text


async def test_manual_input_limits(make_app, open_client):
    api = await open_client(make_app(CTISTUDIO_MAX_UPLOAD_BYTES="4096"))
    short = await api.post("/api/articles", json={"text": "two words"})
    assert short.status_code == 400 and "too little" in short.json()["detail"]
    big = await api.post("/api/articles/upload", files={"file": ("big.txt", b"word " * 2000, "text/plain")})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    private = await api.post("/api/articles/url", json={"url": "http://127.0.0.1:9/x"})
    assert private.status_code == 400 and private.json()["fix"]
    assert (await api.get("/api/articles/999")).status_code == 404
