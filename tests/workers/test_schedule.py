"""The schedule: a feed gets new items; within two polls of its source they are stored and, with
CTISTUDIO_AUTORUN_MIN_SCORE, run — in process (``serve --schedule``) and with Celery beat + a worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctistudio.config import Settings, load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.store.articles import ArticleFilter, list_articles
from ctistudio.store.models import PipelineRun
from ctistudio.store.sources import SourceDefinition, add_source
from ctistudio.testing.feed_server import FeedItem, FeedServer, article_page, rss_feed
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.worker_fleet import WorkerFleet, ctistudio_process, fleet_env
from ctistudio.workers.schedule import InProcessSchedule, beat_schedule, jobs

INTERVAL = 1  # seconds between two checks of the test's source
REPORT = [
    "The intrusion began with a OneNote attachment that dropped an HTA file which mshta.exe launched.",
    "The HTA started powershell.exe -nop -w hidden -enc with a download of the second stage over HTTPS.",
    "Persistence was a Run key and a scheduled task running rundll32.exe every thirty minutes on each host.",
    "The operators dumped LSASS with comsvcs.dll MiniDump and moved laterally with WMI and PsExec.",
    "Defenders can hunt for mshta.exe spawning PowerShell, encoded commands and new scheduled tasks.",
]
CODE = [
    "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA",
    'schtasks /create /tn "LanternUpdate" /tr "rundll32.exe C:\\ProgramData\\lantern.dll,Start" /sc minute /mo 30',
    "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Temp\\l.dmp full",
]


class Feed:
    """One source's feed on the feed server; :meth:`publish` adds an item (a new ETag, like a real site)."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.items: list[FeedItem] = []

    def publish(self, title: str) -> None:
        n = len(self.items)
        page = article_page(title, [f"{title}: {p}" for p in REPORT], code=CODE)
        url = self.server.add(f"/posts/{n}", page)
        self.items.append(FeedItem(title, url, datetime(2026, 11, n + 1, tzinfo=UTC)))
        self.server.add("/feed.xml", rss_feed("Lab", self.items), "application/rss+xml", etag=f'"v{n}"')

    @property
    def polls(self) -> int:
        return len(self.server.hits("/feed.xml"))


def _register_source(store: Store, feed_url: str) -> None:
    with store.session() as session:
        add_source(
            session, SourceDefinition("lab", "Lab", feed_url, feed_url, INTERVAL, True, {"min_content_length": 200})
        )


def _stored_titles(store: Store) -> set[str]:
    with store.session() as session:
        return {a.title for a in list_articles(session, ArticleFilter(), limit=100)}


def _runs_by_title(store: Store) -> dict[str, str]:
    with store.session() as session:
        titles = {a.id: a.title for a in list_articles(session, ArticleFilter(), limit=100)}
        return {titles[r.article_id]: r.status for r in session.query(PipelineRun)}


async def _until(condition: Callable[[], bool], timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting (see the assertion that follows for what was missing)")
        await asyncio.sleep(0.05)


async def _new_item_within_two_polls(feed: Feed, store: Store, title: str) -> None:
    """Publish ``title`` and check that it is stored, with a run, by the end of the second poll after that."""
    before = feed.polls
    feed.publish(title)
    await _until(lambda: title in _stored_titles(store) and title in _runs_by_title(store))
    assert feed.polls - before <= 2, f"stored only after {feed.polls - before} polls of the feed"


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def team_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Settings]:
    def apply(**values: str) -> Settings:
        empty = tmp_path / "sources.yaml"
        empty.write_text("sources: []\n")
        values = {
            "CTISTUDIO_SCHEDULE_TICK": "0.25",
            "CTISTUDIO_AUTORUN_MIN_SCORE": "30",
            "CTISTUDIO_ALLOW_PRIVATE_FETCH": "true",  # the feed server lives on loopback
            "CTISTUDIO_FETCH_HOST_INTERVAL": "0",
            "CTISTUDIO_SOURCES_FILE": str(empty),  # only the test's source: never the packaged (internet) ones
            "CTISTUDIO_EMBEDDING_PROVIDER": "lmstudio",
            "CTISTUDIO_EMBEDDED": "false",
            "LLM_PROVIDER": "lmstudio",
            **values,
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        return load_settings(env_file=None)

    return apply


def test_the_schedule_has_the_polls_and_the_index_refresh(team_env, tmp_path, monkeypatch):
    settings = team_env(CTISTUDIO_SIGMA_RULES_DIR=str(tmp_path), CTISTUDIO_SIGMA_REFRESH_HOURS="6")
    assert [(j.name, j.every) for j in jobs(settings)] == [("poll-sources", 0.25), ("refresh-sigma-index", 21600)]
    entries = beat_schedule(settings)
    assert entries["poll-sources"]["task"] == "ctistudio.poll_sources"
    assert entries["refresh-sigma-index"]["schedule"] == 21600
    monkeypatch.delenv("CTISTUDIO_SIGMA_RULES_DIR")
    no_rules = team_env(CTISTUDIO_SIGMA_REFRESH_HOURS="6")
    assert [j.name for j in jobs(no_rules)] == ["poll-sources"]


@contextlib.asynccontextmanager
async def _scheduled(settings: Settings, first_title: str) -> AsyncIterator[tuple[Feed, Store, InProcessSchedule]]:
    """A feed with one item, its source registered, and the in-process schedule running (as serve does)."""
    with FeedServer() as server, Store(settings) as store:
        feed = Feed(server)
        feed.publish(first_title)
        _register_source(store, server.url("/feed.xml"))
        async with Gateway(settings) as gateway:
            service = PipelineService(settings, store, gateway)
            schedule = InProcessSchedule(lambda: settings, store, lambda: gateway, service.start_run)
            task = asyncio.create_task(schedule.run_forever())
            try:
                yield feed, store, schedule
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_in_process_schedule_stores_and_runs_new_items_within_two_polls(team_env, lmstudio_double):
    settings = team_env(**lmstudio_double.env())
    async with _scheduled(settings, "Lantern loader, first sighting") as (feed, store, schedule):
        await _until(lambda: "Lantern loader, first sighting" in _runs_by_title(store))
        await _new_item_within_two_polls(feed, store, "Lantern loader, second wave")
        await _until(lambda: set(_runs_by_title(store).values()) <= {"succeeded", "gated"})
        assert schedule.passes["poll-sources"] >= 2
        assert set(_runs_by_title(store)) == {"Lantern loader, first sighting", "Lantern loader, second wave"}


async def test_without_autorun_new_items_are_stored_but_not_run(team_env, lmstudio_double):
    settings = team_env(CTISTUDIO_AUTORUN_MIN_SCORE="", **lmstudio_double.env())
    async with _scheduled(settings, "Quiet report") as (feed, store, _):
        await _until(lambda: "Quiet report" in _stored_titles(store) and feed.polls >= 2)
        assert _runs_by_title(store) == {}


@pytest.mark.slow
async def test_celery_beat_and_a_worker_store_and_run_new_items_within_two_polls(
    team_env, broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = tmp_path / "data"
    with LMStudioDouble() as lms, FeedServer() as server:
        env = fleet_env(broker_url, f"sqlite:///{data / 'team.db'}", data, lms)
        settings = team_env(**{k: v for k, v in env.items() if k.startswith(("CTISTUDIO_", "LMSTUDIO_"))})
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CTISTUDIO_", "LMSTUDIO_", "LLM_"))})
        with Store(settings) as store:
            feed = Feed(server)
            feed.publish("Beat report one")
            _register_source(store, server.url("/feed.xml"))
            with WorkerFleet(env, count=1, concurrency=2), ctistudio_process(env, "scheduler"):
                await _until(lambda: "Beat report one" in _runs_by_title(store), timeout=120)
                await _new_item_within_two_polls(feed, store, "Beat report two")
                await _until(lambda: set(_runs_by_title(store).values()) <= {"succeeded", "gated"}, timeout=120)
            assert set(_runs_by_title(store)) == {"Beat report one", "Beat report two"}


@pytest.mark.slow
async def test_serve_with_schedule_polls_and_runs_without_a_broker(team_env, tmp_path: Path, free_port: int):
    data = tmp_path / "data"
    with LMStudioDouble() as lms, FeedServer() as server:
        feed = Feed(server)
        feed.publish("Served report")
        sources = tmp_path / "team-sources.yaml"
        sources.write_text(
            "sources:\n  - id: lab\n    name: Lab\n    url: {0}\n    rss_url: {0}\n    check_frequency: 60\n"
            "    config: {{min_content_length: 200}}\n".format(server.url("/feed.xml"))
        )
        settings = team_env(CTISTUDIO_SOURCES_FILE=str(sources), CTISTUDIO_DATA_DIR=str(data), **lms.env())
        env = {**os.environ, "CTISTUDIO_LOG_DIR": str(data / "logs")}
        assert settings.broker_url is None
        with ctistudio_process(env, "serve", "--schedule", "--port", str(free_port)), Store(settings) as store:
            await _until(lambda: _runs_by_title(store).get("Served report") in ("succeeded", "gated"), timeout=90)
