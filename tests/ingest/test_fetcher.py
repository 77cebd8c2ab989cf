"""The fetcher against a real local server: limits, redirects, SSRF, conditional GET, robots, rate limit."""

from __future__ import annotations

import re

import pytest

from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.http_fetch import FEED_TYPES, PAGE_TYPES, USER_AGENT, Fetcher, FetchLimits


def limits(**overrides) -> FetchLimits:
    values = {"allow_private": True, "host_interval": 0.0, "timeout": 5.0}
    values.update(overrides)
    return FetchLimits(**values)


async def test_page_is_fetched_with_our_user_agent(feed_server):
    url = feed_server.add("/post", "<html><body><p>hello</p></body></html>")
    async with Fetcher(limits()) as fetcher:
        result = await fetcher.fetch(url)
    assert (result.status_code, result.content_type, result.body) == (
        200,
        "text/html",
        b"<html><body><p>hello</p></body></html>",
    )
    assert feed_server.hits("/post")[0].headers["User-Agent"] == USER_AGENT
    assert [r.path for r in feed_server.requests] == ["/robots.txt", "/post"]


async def test_loopback_is_refused_when_private_fetch_is_off(feed_server):
    url = feed_server.add("/post", "<p>secret</p>")
    async with Fetcher(limits(allow_private=False)) as fetcher:
        with pytest.raises(Refused) as caught:
            await fetcher.fetch(url)
    assert "loopback address 127.0.0.1" in caught.value.message
    assert feed_server.requests == []  # refused before any connection


async def test_hostnames_are_refused_after_resolution(feed_server):
    feed_server.add("/post", "<p>secret</p>")
    async with Fetcher(limits(allow_private=False)) as fetcher:
        with pytest.raises(Refused, match="localhost: it resolves to loopback"):
            await fetcher.fetch(f"http://localhost:{feed_server.port}/post")
    assert feed_server.requests == []


async def test_redirects_are_followed_and_recorded(feed_server):
    final = feed_server.add("/final", "<p>there</p>")
    feed_server.redirect("/b", final, status=301)
    start = feed_server.redirect("/a", "/b")  # relative Location
    async with Fetcher(limits()) as fetcher:
        result = await fetcher.fetch(start)
    assert result.final_url == final
    assert result.redirects == [start, feed_server.url("/b")]
    assert result.body == b"<p>there</p>"


async def test_redirect_to_a_metadata_address_is_refused_on_the_hop(feed_server):
    """Private fetching is on (the first hop is loopback), yet the redirect target is checked and refused."""
    start = feed_server.redirect("/go", "http://169.254.169.254/latest/meta-data/iam/")
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(Refused, match=re.escape("cloud metadata address 169.254.169.254")):
            await fetcher.fetch(start)
    assert [r.path for r in feed_server.requests] == ["/robots.txt", "/go"]


async def test_redirect_to_another_scheme_is_refused(feed_server):
    start = feed_server.redirect("/go", "file:///etc/passwd")
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(Refused, match="scheme file"):
            await fetcher.fetch(start)


async def test_redirect_loops_stop_at_the_limit(feed_server):
    feed_server.redirect("/loop-a", "/loop-b")
    start = feed_server.redirect("/loop-b", "/loop-a")
    async with Fetcher(limits(max_redirects=3)) as fetcher:
        with pytest.raises(Refused, match="more than 3 redirects"):
            await fetcher.fetch(start)
    assert len(feed_server.hits("/loop-a")) + len(feed_server.hits("/loop-b")) == 4


async def test_announced_huge_response_is_refused_without_reading(feed_server):
    url = feed_server.add("/huge", content_type="text/html", generated_size=50_000_000)
    async with Fetcher(limits(max_bytes=100_000)) as fetcher:
        with pytest.raises(Refused, match=r"50,000,000 bytes exceeds the 100,000-byte limit"):
            await fetcher.fetch(url)


async def test_unannounced_huge_response_is_cut_off_while_streaming(feed_server):
    url = feed_server.add("/huge", content_type="text/html", generated_size=5_000_000, omit_length=True)
    async with Fetcher(limits(max_bytes=100_000)) as fetcher:
        with pytest.raises(Refused, match="exceeds the 100,000-byte limit \\(stopped reading\\)"):
            await fetcher.fetch(url)


async def test_slow_drip_response_hits_the_total_timeout(feed_server):
    url = feed_server.add("/slow", b"<p>" + b"x" * 400 + b"</p>", drip=(10, 0.05))  # ~2 s in total
    async with Fetcher(limits(timeout=0.5)) as fetcher:
        with pytest.raises(FetchFailed, match=re.escape("no complete answer within 0.5 s")):
            await fetcher.fetch(url)


async def test_wrong_content_type_is_refused(feed_server):
    url = feed_server.add("/bin", b"\x7fELF\x02\x01", content_type="application/x-executable")
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(Refused, match="content type application/x-executable is not accepted"):
            await fetcher.fetch(url, accept=PAGE_TYPES)
    page = feed_server.add("/page.html", "<html><body>a page</body></html>")
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(Refused, match="content type text/html is not accepted"):
            await fetcher.fetch(page, accept=FEED_TYPES)


async def test_http_errors_carry_the_status(feed_server):
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(FetchFailed) as caught:
            await fetcher.fetch(feed_server.url("/missing"))
    assert caught.value.status_code == 404


async def test_conditional_get_sends_validators_and_accepts_304(feed_server):
    url = feed_server.add(
        "/feed", "<rss/>", "application/rss+xml", etag='"abc"', last_modified="Mon, 02 Mar 2026 09:00:00 GMT"
    )
    async with Fetcher(limits()) as fetcher:
        first = await fetcher.fetch(url, accept=FEED_TYPES)
        second = await fetcher.fetch(url, accept=FEED_TYPES, etag=first.etag, last_modified=first.last_modified)
    assert (first.status_code, first.etag) == (200, '"abc"')
    assert second.not_modified and second.body == b""
    sent = feed_server.hits("/feed")[1].headers
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Mon, 02 Mar 2026 09:00:00 GMT"


async def test_robots_txt_disallow_is_respected(feed_server):
    feed_server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    allowed = feed_server.add("/public/post", "<p>ok</p>")
    blocked = feed_server.add("/private/post", "<p>no</p>")
    async with Fetcher(limits()) as fetcher:
        assert (await fetcher.fetch(allowed)).status_code == 200
        with pytest.raises(Refused, match=r"robots\.txt of .* disallows /private/post"):
            await fetcher.fetch(blocked)
    assert feed_server.hits("/private/post") == []
    assert len(feed_server.hits("/robots.txt")) == 1  # cached per origin


async def test_robots_txt_server_error_closes_the_site(feed_server):
    feed_server.add("/robots.txt", "oops", "text/plain", status=503)
    url = feed_server.add("/post", "<p>x</p>")
    async with Fetcher(limits()) as fetcher:
        with pytest.raises(Refused, match="answered HTTP 503"):
            await fetcher.fetch(url)


async def test_per_host_rate_limit_spaces_requests(feed_server):
    """Four requests to one host with a 0.25 s interval span at least ~0.75 s (without the limit: ~0 s)."""
    urls = [feed_server.add(f"/p{i}", "<p>x</p>") for i in range(4)]
    async with Fetcher(limits(host_interval=0.25), concurrency=8) as fetcher:
        for url in urls:
            await fetcher.fetch(url, check_robots=False)
    starts = [r.at for r in feed_server.requests]
    assert len(starts) == 4 and starts[-1] - starts[0] >= 0.6


async def test_charset_from_header_and_meta(feed_server):
    cyrillic = "Вредоносная программа".encode("windows-1251")
    url = feed_server.add(
        "/ru", b"<html><body><p>" + cyrillic + b"</p></body></html>", "text/html; charset=windows-1251"
    )
    japanese = '<html><head><meta charset="shift_jis"></head><body><p>標的型攻撃</p></body></html>'.encode("shift_jis")
    url_jp = feed_server.add("/jp", japanese, "text/html")
    async with Fetcher(limits()) as fetcher:
        assert "Вредоносная программа" in (await fetcher.fetch(url)).text()
        assert "標的型攻撃" in (await fetcher.fetch(url_jp)).text()
