"""Ingestion throughput: 1,000 fixture articles from 20 local feeds, concurrent fetcher vs concurrency 1.

Twenty real HTTP servers (the fixture feed server) listen on 127.0.0.1 … 127.0.0.20 — twenty distinct hosts,
so the per-host rate limit and connection pools behave as with twenty publishers — each with one RSS feed of
50 distinct article pages and a fixed per-request latency standing in for the network. Each run starts from
an empty SQLite database and goes through the whole product path: sources in the store, robots.txt, feed
fetch, page fetch, trafilatura extraction, dedup fingerprints, hunt score, platforms, one row per article.

    .venv/bin/python benchmarks/ingest.py [--feeds 20] [--per-feed 50] [--latency 0.05] [--concurrency 8]

Prints articles/s with the concurrent fetcher (CTISTUDIO_FETCH_CONCURRENCY, default 8) and with
concurrency 1, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctistudio.config import load_settings
from ctistudio.ingest.html_text import extract_with_hints
from ctistudio.ingest.http_fetch import FetchLimits
from ctistudio.ingest.intake import ArticleCandidate, prepare_candidate
from ctistudio.ingest.service import IngestService
from ctistudio.store import Store
from ctistudio.store.articles import count_articles
from ctistudio.store.sources import SourceDefinition, sync_sources
from ctistudio.testing.feed_server import FeedItem, FeedServer, article_page, rss_feed

_WORDS = (
    "the actor loader beacon persistence registry scheduled task service credential lsass dump lateral movement "
    "exfiltration archive rclone powershell encoded command rundll32 mshta certutil download payload stage domain "
    "controller share admin kerberos ticket token cloud bucket role policy access key linux cron systemd binary "
    "defender telemetry process parent child network connection port proxy tunnel ransomware encryption note"
)
VOCABULARY = tuple(_WORDS.split(" "))
COMMANDS = (
    "powershell.exe -nop -w hidden -enc SQBFAFgA{n}",
    "rundll32.exe C:\\Users\\Public\\lib{n}.dll,Start",
    "schtasks /create /tn Updater{n} /tr C:\\ProgramData\\u{n}.exe /sc minute",
    "reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v Svc{n} /d C:\\Temp\\s{n}.exe",
)


def article_text(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    paragraphs = [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(60, 90))) + "." for _ in range(8)]
    code = [rng.choice(COMMANDS).format(n=n) for _ in range(2)]
    return paragraphs, code


def build_servers(stack: ExitStack, feeds: int, per_feed: int, latency: float) -> list[SourceDefinition]:
    rng = random.Random(7)
    definitions = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for feed in range(feeds):
        server = stack.enter_context(FeedServer(host=f"127.0.0.{feed + 1}", latency=latency))
        items = []
        for n in range(per_feed):
            number = feed * per_feed + n
            paragraphs, code = article_text(rng, number)
            title = f"Report {number}: {rng.choice(VOCABULARY)} {rng.choice(VOCABULARY)}"
            url = server.add(f"/{number}", article_page(title, paragraphs, code=code))
            items.append(FeedItem(title, url, start + timedelta(hours=number)))
        feed_url = server.add("/feed.xml", rss_feed(f"Lab {feed}", items), "application/rss+xml")
        definitions.append(
            SourceDefinition(f"lab{feed:02d}", f"Lab {feed}", server.base_url + "/", feed_url, 3600, True, {})
        )
    return definitions


async def one_run(definitions: list[SourceDefinition], concurrency: int, database: Path) -> tuple[float, int]:
    settings = load_settings({"allow_private_fetch": True, "fetch_host_interval": 0.0}, env_file=None)
    with Store(url=f"sqlite:///{database}") as store:
        with store.session() as session:
            sync_sources(session, definitions)
        service = IngestService(store, settings, limits=FetchLimits.from_settings(settings), concurrency=concurrency)
        started = time.perf_counter()
        report = await service.check_sources()
        elapsed = time.perf_counter() - started
        if report.failed:
            raise SystemExit(f"sources failed: {report.failed}")
        problems = [item for check in report.checks.values() for item in check.details["refused"]]
        if problems:
            raise SystemExit(f"{len(problems)} entries refused or failed, e.g. {problems[:3]}")
        with store.session() as session:
            stored = count_articles(session)
    return elapsed, stored


def warm_up() -> None:
    """Load trafilatura, compile the scoring regexes, open SQLite once: neither run should pay for it."""
    paragraphs, code = article_text(random.Random(0), 0)
    page = extract_with_hints(article_page("warm-up", paragraphs, code=code), None, None, None, True)
    prepare_candidate(ArticleCandidate(title="warm-up", text=page.text, origin="feed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--per-feed", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every HTTP answer")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    total = args.feeds * args.per_feed
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    latency_ms = args.latency * 1000
    print(f"corpus: {total} articles from {args.feeds} feeds on 127.0.0.1-{args.feeds}, latency {latency_ms:.0f} ms")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        definitions = build_servers(stack, args.feeds, args.per_feed, args.latency)
        warm_up()
        results = {}
        for label, concurrency in (("concurrent", args.concurrency), ("sequential", 1)):
            elapsed, stored = asyncio.run(one_run(definitions, concurrency, Path(folder) / f"{label}.db"))
            if stored != total:
                raise SystemExit(f"{label}: stored {stored} articles, expected {total}")
            results[label] = total / elapsed
            rate = total / elapsed
            print(
                f"{label:>10} (concurrency {concurrency}): {stored} articles in {elapsed:.2f} s = {rate:.1f} articles/s"
            )
    print(f"ratio concurrent/sequential: {results['concurrent'] / results['sequential']:.2f}x")


if __name__ == "__main__":
    main()
