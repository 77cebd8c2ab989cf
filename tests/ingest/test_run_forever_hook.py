"""``IngestService.run_forever(after_pass=…)``: the hook the CLI indexes new articles in, once per pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ctistudio.ingest.progress import Progress
from ctistudio.store.sources import SourceDefinition, add_source
from ctistudio.testing.feed_server import FeedItem, rss_feed


class NewIds(Progress):
    def __init__(self) -> None:
        self.ids: list[int] = []

    def entry_finished(self, outcome) -> None:
        if outcome.status == "new":
            self.ids.append(outcome.article_id)


async def test_after_pass_runs_after_each_pass_with_its_report(service, feed_server, report_page):
    post = feed_server.add("/lab/post-1", report_page("Polled report"))
    feed = feed_server.add(
        "/lab/feed.xml",
        rss_feed("lab", [FeedItem("Polled report", post, datetime(2026, 2, 1, tzinfo=UTC))]),
        "application/rss+xml",
    )
    with service.store.session() as session:
        add_source(session, SourceDefinition("lab", "Lab", feed, feed, 3600, True, {}))
    progress, stop, passes = NewIds(), asyncio.Event(), []

    async def after_pass(report) -> None:
        passes.append((report.articles_new, list(progress.ids)))
        stop.set()  # one pass is enough

    await asyncio.wait_for(service.run_forever(progress=progress, stop=stop, after_pass=after_pass), timeout=30)
    assert len(passes) == 1
    new, ids = passes[0]
    assert new == 1 and len(ids) == 1, "the hook sees the pass's report and the new article's id"
