"""Being a good citizen: a per-host rate limit and robots.txt (RFC 9309), cached per fetcher."""

from __future__ import annotations

import asyncio
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_CRAWL_DELAY = 30.0


class HostRateLimiter:
    """At most one request start per ``interval`` seconds to each host (a robots Crawl-delay raises it)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next_start: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._delays: dict[str, float] = {}

    def set_crawl_delay(self, host: str, delay: float) -> None:
        self._delays[host] = min(max(delay, 0.0), MAX_CRAWL_DELAY)

    async def wait_turn(self, host: str) -> None:
        """Return when a request to ``host`` may start (requests to other hosts are not held up)."""
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            start = max(now, self._next_start.get(host, 0.0))
            self._next_start[host] = start + max(self.interval, self._delays.get(host, 0.0))
            if start > now:
                await asyncio.sleep(start - now)


@dataclass
class RobotsVerdict:
    allowed: bool
    reason: str | None = None


# (status code or None for a network failure, body text) of GET /robots.txt
RobotsFetch = Callable[[str], Awaitable[tuple[int | None, str]]]


class RobotsCache:
    """robots.txt rules per origin, fetched once per run through ``fetch_robots``.

    RFC 9309: a 4xx robots.txt means no rules (everything allowed); a 5xx or an unreachable one means
    the site is unavailable to crawlers (nothing allowed) until the next run.
    """

    def __init__(self, user_agent: str, fetch_robots: RobotsFetch, limiter: HostRateLimiter | None = None) -> None:
        self._agent = user_agent.split("/")[0]
        self._fetch = fetch_robots
        self._limiter = limiter
        self._parsers: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def verdict(self, url: str) -> RobotsVerdict:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin not in self._parsers:
                self._parsers[origin] = await self._load(origin, parts.hostname or "")
        rules = self._parsers[origin]
        if isinstance(rules, str):
            return RobotsVerdict(False, rules)
        if rules.can_fetch(self._agent, url):
            return RobotsVerdict(True)
        return RobotsVerdict(False, f"robots.txt of {origin} disallows {parts.path or '/'} for {self._agent}")

    async def _load(self, origin: str, host: str) -> urllib.robotparser.RobotFileParser | str:
        status, body = await self._fetch(origin + "/robots.txt")
        parser = urllib.robotparser.RobotFileParser()
        if status is None or status >= 500:
            what = "unreachable" if status is None else f"answered HTTP {status}"
            return f"robots.txt of {origin} {what}: the site is treated as closed to crawlers for this run"
        parser.parse(body.splitlines() if 200 <= status < 300 else [])
        delay = parser.crawl_delay(self._agent)
        if delay and self._limiter is not None:
            self._limiter.set_crawl_delay(host, float(delay))
        return parser
