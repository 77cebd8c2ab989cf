"""Fetching feeds and pages safely: SSRF guard on every hop, limits, conditional GET, robots, rate limit.

:class:`Fetcher` is the one HTTP client of ingestion. Each request:

1. refuses non-http(s) URLs and, after DNS resolution, non-public addresses (:mod:`.url_guard`) — the
   transport then connects to exactly the address it checked, with the original Host header and TLS name;
2. asks robots.txt (once per origin per run) and waits for its turn at the host (per-host rate limit);
3. sends ``If-None-Match`` / ``If-Modified-Since`` when validators are known (a 304 is a success);
4. follows at most ``max_redirects`` redirects, checking each target again;
5. refuses content types the caller does not accept, bodies over ``max_bytes`` (announced or streamed) and
   responses that take longer than ``timeout`` in total (slow-drip servers included).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from ctistudio import __version__
from ctistudio.config import Settings
from ctistudio.ingest.charset import decode_text
from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.politeness import HostRateLimiter, RobotsCache
from ctistudio.ingest.url_guard import FIX, resolve_checked, url_refusal

USER_AGENT = f"ctistudio/{__version__} (+local CTI workbench; respects robots.txt)"
REDIRECT_CODES = {301, 302, 303, 307, 308}
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        "application/x-rss+xml",
        "text/plain",
        "application/octet-stream",
    }
)
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", "text/markdown", "application/pdf"})


@dataclass
class FetchLimits:
    timeout: float = 20.0  # seconds for the whole exchange, body included
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    host_interval: float = 1.0  # seconds between request starts to one host
    allow_private: bool = False
    respect_robots: bool = True
    user_agent: str = USER_AGENT

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        return cls(
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            max_redirects=settings.fetch_max_redirects,
            host_interval=settings.fetch_host_interval,
            allow_private=settings.allow_private_fetch,
        )


@dataclass
class FetchResult:
    url: str
    final_url: str
    status_code: int
    content_type: str  # media type, lower case, without parameters ("" if none)
    charset: str | None
    body: bytes
    elapsed_ms: float
    etag: str | None = None
    last_modified: str | None = None
    redirects: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304

    def text(self) -> str:
        return decode_text(self.body, self.charset)


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves and checks the host of every request, then connects to the checked address only."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        reason = url_refusal(str(request.url))
        if reason:
            raise Refused(f"refused to fetch {request.url}: {reason}", fix=FIX)
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        target = await resolve_checked(host, port, allow_private=self._allow_private)
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=target.address),
            headers=request.headers,  # keeps Host: <original name>
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _media_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    parts = [p.strip() for p in header.split(";")]
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return parts[0].lower(), charset


def _sniff_type(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:256]:
        return "text/html"
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf")):
        return "application/xml"
    return ""


class Fetcher:
    """The HTTP client of ingestion (use ``async with Fetcher(limits, concurrency=8) as fetcher``)."""

    def __init__(self, limits: FetchLimits | None = None, *, concurrency: int = 8) -> None:
        self.limits = limits or FetchLimits()
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=self.limits.allow_private),
            follow_redirects=False,
            timeout=httpx.Timeout(self.limits.timeout),
            headers={"User-Agent": self.limits.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._slots = asyncio.Semaphore(concurrency)
        self.rate_limiter = HostRateLimiter(self.limits.host_interval)
        self.robots = RobotsCache(self.limits.user_agent, self._fetch_robots, self.rate_limiter)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        accept: Collection[str] = PAGE_TYPES,
        etag: str | None = None,
        last_modified: str | None = None,
        check_robots: bool = True,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` within the limits; raises :class:`Refused` or :class:`FetchFailed` with the reason."""
        return await self._follow(url, accept, etag, last_modified, check_robots, max_bytes)

    async def _follow(
        self,
        url: str,
        accept: Collection[str],
        etag: str | None,
        last_modified: str | None,
        check_robots: bool,
        max_bytes: int | None,
    ) -> FetchResult:
        redirects: list[str] = []
        current = url
        while True:
            reason = url_refusal(current)
            if reason:
                raise Refused(f"refused to fetch {current}: {reason}", fix=FIX)
            if check_robots and self.limits.respect_robots:
                verdict = await self.robots.verdict(current)
                if not verdict.allowed:
                    raise Refused(
                        f"refused to fetch {current}: {verdict.reason}", fix="The site asks not to be crawled."
                    )
            headers = {}
            if etag and not redirects:
                headers["If-None-Match"] = etag
            if last_modified and not redirects:
                headers["If-Modified-Since"] = last_modified
            result = await self._exchange(current, headers, accept, max_bytes or self.limits.max_bytes)
            if isinstance(result, FetchResult):
                result.url, result.redirects = url, redirects
                return result
            redirects.append(current)
            if len(redirects) > self.limits.max_redirects:
                raise Refused(
                    f"{url}: more than {self.limits.max_redirects} redirects (last to {result})",
                    fix="Use the final URL directly (CTISTUDIO_FETCH_MAX_REDIRECTS sets the limit).",
                )
            current = result

    async def _exchange(
        self, url: str, headers: dict[str, str], accept: Collection[str], max_bytes: int
    ) -> FetchResult | str:
        """One request: a result, or the absolute URL a redirect points to."""
        await self.rate_limiter.wait_turn(urlsplit(url).hostname or "")
        async with self._slots:  # the time limit starts once a slot is ours, not while queueing for one
            started = time.perf_counter()
            try:
                async with (
                    asyncio.timeout(self.limits.timeout),
                    self._client.stream("GET", url, headers=headers) as response,
                ):
                    if response.status_code in REDIRECT_CODES and response.headers.get("location"):
                        return urljoin(url, response.headers["location"])
                    if response.status_code == 304:
                        return self._result(url, response, b"", started)
                    if response.status_code >= 400:
                        raise FetchFailed(
                            f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                            fix="Check the URL; it is retried at the next check.",
                            status_code=response.status_code,
                        )
                    body = await self._read_limited(url, response, max_bytes)
                    result = self._result(url, response, body, started)
            except TimeoutError as exc:
                raise FetchFailed(
                    f"{url}: no complete answer within {self.limits.timeout:g} s",
                    fix="The site is slow or stalled; it is retried at the next check (CTISTUDIO_FETCH_TIMEOUT).",
                ) from exc
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"{url}: timed out ({exc.__class__.__name__})") from exc
            except httpx.TooManyRedirects as exc:  # pragma: no cover - redirects are followed here
                raise Refused(f"{url}: too many redirects") from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(
                    f"{url}: {exc.__class__.__name__}: {exc}", fix="Check the URL and the network; retried later."
                ) from exc
        if result.content_type not in accept:
            raise Refused(
                f"{url}: content type {result.content_type or '(unknown)'} is not accepted here "
                f"(expected one of {', '.join(sorted(accept))})",
                fix="Point at the feed or the article page itself.",
            )
        return result

    def _result(self, url: str, response: httpx.Response, body: bytes, started: float) -> FetchResult:
        media_type, charset = _media_type(response.headers.get("content-type"))
        if not media_type or media_type == "application/octet-stream":
            media_type = _sniff_type(body) or media_type
        return FetchResult(
            url=url,
            final_url=url,
            status_code=response.status_code,
            content_type=media_type,
            charset=charset,
            body=body,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )

    async def _read_limited(self, url: str, response: httpx.Response, max_bytes: int) -> bytes:
        announced = response.headers.get("content-length")
        if announced and announced.isdigit() and int(announced) > max_bytes:
            raise Refused(
                f"{url}: response of {int(announced):,} bytes exceeds the {max_bytes:,}-byte limit",
                fix="Raise CTISTUDIO_FETCH_MAX_BYTES if this page is legitimate.",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise Refused(
                    f"{url}: response exceeds the {max_bytes:,}-byte limit (stopped reading)",
                    fix="Raise CTISTUDIO_FETCH_MAX_BYTES if this page is legitimate.",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _fetch_robots(self, url: str) -> tuple[int | None, str]:
        try:
            result = await self.fetch(
                url, accept={"text/plain", ""} | PAGE_TYPES, check_robots=False, max_bytes=512_000
            )
        except FetchFailed as exc:
            return exc.status_code, ""
        except Refused:
            return 404, ""  # an odd robots.txt (wrong type, too big) is treated as absent
        return result.status_code, result.text()
