"""New articles are chunked and embedded when they are stored: ``ctistudio ingest …`` and ``run --file``.

The CLI runs in-process against a real SQLite file; pages and feeds come from a real HTTP server on
127.0.0.1; embeddings from the real embedded MiniLM or the LM Studio double. Without a reachable embedding
provider the article is still stored, one warning line says what will index it, and the command succeeds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.config import load_settings
from ctistudio.store import Store
from ctistudio.store.chunks import stored_embedding_models
from ctistudio.store.models import Chunk
from ctistudio.testing.feed_server import FeedItem, FeedServer, article_page, rss_feed

MINILM = "embedded/all-minilm-l6-v2-int8/384"
DOUBLE = "lmstudio/text-embedding-nomic-embed-text-v1.5/64"
REPORT = """# Kerberoasting from a jump host

The intruders requested service tickets for every account with a service principal name using Rubeus
from the jump host, then cracked the RC4 tickets offline. Within two hours they held the password of the
SQL service account, which was a member of the domain administrators group. Defenders can hunt for bursts
of Kerberos service ticket requests (event 4769) with RC4 encryption from a single workstation.
"""


def page(title: str) -> str:
    return article_page(
        title,
        [
            f"{title}: the loader abused certutil with -urlcache to download the second stage from a paste site.",
            "Persistence came from a scheduled task that ran rundll32 with an exported function every hour.",
            "The operators enumerated the domain with AdFind and staged archives in the recycle bin folder.",
            "Hunt for certutil with urlcache arguments and for scheduled tasks pointing at rundll32 exports.",
            "Credential access followed: the operators read LSASS memory with comsvcs.dll MiniDump from a service.",
            "Lateral movement used WMI process creation against file servers with the stolen administrator hash.",
            "Before encryption the volume shadow copies were deleted with vssadmin and backups were stopped.",
        ],
    )


@pytest.fixture
def cli(monkeypatch):
    """Invoke ``ctistudio``; each call loads settings afresh, as a new process would."""
    monkeypatch.setenv("CTISTUDIO_ALLOW_PRIVATE_FETCH", "true")  # the page server lives on loopback
    monkeypatch.setenv("CTISTUDIO_FETCH_HOST_INTERVAL", "0")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    return invoke


@pytest.fixture
def pages() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def chunks_by_article() -> dict[int, int]:
    with Store(load_settings(env_file=None)) as store, store.session() as session:
        counts: dict[int, int] = {}
        for chunk in session.query(Chunk):
            counts[chunk.article_id] = counts.get(chunk.article_id, 0) + 1
        return counts


def embedding_models() -> dict[str, int]:
    with Store(load_settings(env_file=None)) as store, store.session() as session:
        return stored_embedding_models(session)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ingest_file_is_searchable_at_once_with_minilm_and_duplicates_are_not_indexed(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "embedded")
    report = tmp_path / "kerberoast.md"
    report.write_text(REPORT, encoding="utf-8")
    stored = cli("ingest", "file", str(report), "--json")
    assert stored.exit_code == 0, stored.output
    outcome = json.loads(stored.stdout)
    assert outcome["status"] == "new" and outcome["chat_index"] == "indexed"
    assert embedding_models() == {MINILM: chunks_by_article()[outcome["article_id"]]}

    # --no-index: the search itself indexes nothing, so the hit proves indexing happened on ingest
    found = cli("search", "cracking service tickets offline", "--no-index", "--rules", "0", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["chunks"][0]["article_id"] == outcome["article_id"]

    again = json.loads(cli("ingest", "file", str(report), "--json").stdout)
    assert again["status"] in ("exists", "duplicate") and again["chat_index"] is None
    copy = json.loads(cli("ingest", "text", "--title", "Copy", "--json", input=REPORT).stdout)
    assert copy["status"] == "duplicate" and copy["chat_index"] is None
    assert set(chunks_by_article()) == {outcome["article_id"]}, "duplicates are not indexed"

    human = cli("ingest", "text", "--title", "Other", input=REPORT.replace("Rubeus", "Impacket") + "\nNew part.")
    assert human.exit_code == 0 and "warning" not in human.stderr


def test_url_feed_and_sources_are_indexed_when_stored(cli, pages, lmstudio_double, monkeypatch, tmp_path):
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    one = json.loads(cli("ingest", "url", pages.add("/one", page("Single page")), "--json").stdout)
    assert one["status"] == "new" and one["chat_index"] == "indexed"

    items = [FeedItem(f"Entry {n}", pages.add(f"/e{n}", page(f"Entry {n} of the lab"))) for n in range(3)]
    feed = cli("ingest", "feed", pages.add("/feed.xml", rss_feed("lab", items), "application/rss+xml"), "--json")
    assert feed.exit_code == 0, feed.output
    new = [o["article_id"] for o in json.loads(feed.stdout)["outcomes"] if o["status"] == "new"]
    assert len(new) == 3

    source_items = [FeedItem("Source report", pages.add("/s1", page("Source report from the lab")))]
    source_feed = pages.add("/source.xml", rss_feed("src", source_items), "application/rss+xml")
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - id: lab\n    name: Lab\n    url: {pages.base_url}/\n    rss_url: {source_feed}\n"
        "    config: {min_content_length: 200}\n",
        encoding="utf-8",
    )
    run = cli("ingest", "sources", "--once", "--source", "lab", "--sources-file", str(sources), "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["articles_new"] == 1, run.stdout

    indexed = chunks_by_article()
    assert len(indexed) == 5 and {one["article_id"], *new} < set(indexed)
    assert list(embedding_models()) == [DOUBLE]
    assert len(lmstudio_double.requests_to("/v1/embeddings")) >= 3


def test_no_embedding_provider_stores_warns_once_and_backfill_catches_up(cli, lmstudio_double, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    monkeypatch.setenv("LMSTUDIO_EMBEDDING_URL", f"http://127.0.0.1:{closed_port()}/v1/embeddings")
    monkeypatch.setenv("CTISTUDIO_RETRY_BACKOFF", "0.01")
    # a real process: exactly what the user sees on stderr
    stored = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "ingest", "text", "--title", "Kerberoasting"],
        input=REPORT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert stored.returncode == 0, stored.stderr
    assert "stored article 1" in stored.stdout
    warnings = [line for line in stored.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, stored.stderr
    assert warnings[0].startswith("warning: article 1 is stored but not indexed for search yet (lmstudio: ")
    assert warnings[0].endswith("`ctistudio rag backfill` (or the first search) will index it")
    assert "Traceback" not in stored.stderr
    assert chunks_by_article() == {}
    assert json.loads(cli("articles", "list", "--json").stdout)["total"] == 1

    second = cli("ingest", "text", "--title", "Second", "--json", input=REPORT.replace("Rubeus", "Impacket") + "x y")
    assert second.exit_code == 0 and "not indexed" in json.loads(second.stdout)["chat_index"]

    monkeypatch.setenv("LMSTUDIO_EMBEDDING_URL", lmstudio_double.env()["LMSTUDIO_EMBEDDING_URL"])
    caught_up = cli("rag", "backfill", "--no-rules", "--json")
    assert caught_up.exit_code == 0, caught_up.output
    assert json.loads(caught_up.stdout)["articles"] == 2
    assert set(chunks_by_article()) == {1, 2}


async def test_run_file_indexes_the_article_it_stores(lmstudio_double, monkeypatch, tmp_path: Path):
    from ctistudio.cli.run import intake
    from ctistudio.pipeline.service import open_service

    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    report = tmp_path / "kerberoast.md"
    report.write_text(REPORT, encoding="utf-8")
    async with open_service(load_settings(env_file=None), concurrency=1) as service:
        article_id = await intake(service, None, report, quiet=True)
        assert await intake(service, None, report, quiet=True) == article_id
    assert list(chunks_by_article()) == [article_id]
    assert len(lmstudio_double.requests_to("/v1/embeddings")) == 1, "stored once, indexed once"
