"""Sources through the API: add, enable/disable, fetch now against a local feed server, health shown."""

from __future__ import annotations

from ctistudio.testing.feed_server import FeedItem, FeedServer, article_page, rss_feed

PARAGRAPHS = [
    "The intrusion began with a OneNote attachment that started mshta.exe from the Public Libraries folder.",
    "The loader then ran powershell.exe -nop -w hidden -ep bypass -enc with a base64 download cradle.",
    "Persistence used schtasks /create /tn Updater /tr rundll32.exe and a Run key under HKCU.",
]


async def test_add_disable_and_fetch_now(make_app, open_client):
    api = await open_client(make_app(CTISTUDIO_ALLOW_PRIVATE_FETCH="true", CTISTUDIO_FETCH_HOST_INTERVAL="0"))
    with FeedServer() as site:
        post = site.add("/p/1", article_page("Lantern returns", PARAGRAPHS * 4))
        feed = site.add("/feed.xml", rss_feed("Lab", [FeedItem("Lantern returns", post)]), "application/rss+xml")
        created = await api.post(
            "/api/sources", json={"id": "fixture-lab", "name": "Fixture Lab", "url": site.url("/"), "rss_url": feed}
        )
        assert created.status_code == 201, created.text
        duplicate = await api.post("/api/sources", json={"id": "fixture-lab", "name": "x", "url": site.url("/")})
        assert duplicate.status_code == 400 and "exists already" in duplicate.json()["detail"]
        bad = await api.post("/api/sources", json={"id": "Bad Id!", "name": "x", "url": "ftp://x"})
        assert bad.status_code == 422

        disabled = await api.patch("/api/sources/fixture-lab", json={"active": False})
        assert disabled.json()["active"] is False
        assert (await api.patch("/api/sources/fixture-lab", json={"active": True})).json()["active"] is True

        fetched = await api.post("/api/sources/fixture-lab/fetch")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["status"] == "ok" and fetched.json()["articles_new"] == 1
    source = next(s for s in (await api.get("/api/sources")).json() if s["id"] == "fixture-lab")
    assert source["articles"] == 1 and source["last_success_at"] and source["consecutive_failures"] == 0
    articles = (await api.get("/api/articles", params={"source": "fixture-lab"})).json()
    assert [a["title"] for a in articles["items"]] == ["Lantern returns"]
    assert (await api.patch("/api/sources/nosuch", json={"active": False})).status_code == 404
    page = await api.get("/sources")
    assert "Fixture Lab" in page.text and "badge ok" in page.text
