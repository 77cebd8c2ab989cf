"""The one HTTP transport every provider uses: connection pooling, host fallback, SSE, error mapping.

Every HTTP failure is translated into :mod:`ctistudio.llm.errors` here, once (``raise ... from exc``), so
providers and the router only ever see our hierarchy. Host fallback (e.g. LM Studio configured URL →
localhost → 127.0.0.1 → host.docker.internal) is part of the transport and is used for *connection*
failures only: a server that answers, even with an error, is the server we talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ctistudio.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextOverflow,
    ModelNotLoaded,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ServerError,
)
from ctistudio.llm.overflow import classify_overflow, looks_like_model_missing

log = logging.getLogger(__name__)

# Failures to *reach* a server: the only ones that move on to the next candidate host.
_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout)

# Fixes appended to errors, per failure kind; providers pass their own (e.g. LM Studio's troubleshooting).
FixFor = Callable[[str], str | None]


def host_candidates(url: str, fallback_hosts: list[str]) -> list[str]:
    """``url`` first, then the same URL with each fallback host (port, path and scheme kept), deduplicated."""
    parts = urlsplit(url)
    out = [url.rstrip("/")]
    for host in fallback_hosts:
        netloc = f"{host}:{parts.port}" if parts.port else host
        candidate = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
        if candidate not in out:
            out.append(candidate)
    return out


def server_root(url: str) -> str:
    """``http://host:1234/v1`` → ``http://host:1234``: where native (non-OpenAI) endpoints live."""
    root = url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_text(body: str) -> str:
    """The human message inside an error body: ``{"error": "..."}``, ``{"error": {"message": ...}}`` or raw."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return body.strip()[:2000]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err is not None:
            return str(err)
    return body.strip()[:2000]


class HttpTransport:
    """Talks HTTP to one logical endpoint, which may have several candidate base URLs (host fallback).

    One ``httpx.AsyncClient`` is kept per running event loop (the CLI runs one loop per command, tests
    one per test) so connections are pooled without leaking across loops.
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 5.0,
        fallback_hosts: list[str] | None = None,
        headers: dict[str, str] | None = None,
        fix_for: FixFor | None = None,
    ) -> None:
        self.provider = provider
        self.candidates = host_candidates(base_url, fallback_hosts or [])
        self.base_url = self.candidates[0]  # the one that last answered
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._headers = dict(headers or {})
        if api_key:
            self._headers.setdefault("Authorization", f"Bearer {api_key}")
        self._fix_for = fix_for or (lambda kind: None)
        # One client per event loop (a client's connections belong to the loop that opened them); weak keys,
        # so a finished loop (a CLI command, a test) takes its entry with it and no stale id is ever reused.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._default_timeout = httpx.Timeout(timeout, connect=connect_timeout)

    # -- client management -------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                headers=self._headers,
                timeout=self._default_timeout,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                trust_env=False,  # a proxy from the environment must not sit between us and a local server
            )
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client (clients of other, finished loops went with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None and not client.is_closed:
            await client.aclose()

    # -- requests ----------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: float | None = None,
        absolute_url: str | None = None,
    ) -> httpx.Response:
        """Send a request, trying each candidate host on connection failure; map errors; return the response."""
        _, response = await self._send(method, path, json_body, timeout, stream=False, absolute_url=absolute_url)
        return response

    async def stream_lines(
        self, path: str, json_body: Any, *, timeout: float | None = None
    ) -> AsyncGenerator[str, None]:
        """POST and yield the response body line by line (SSE or NDJSON), with the same error mapping."""
        url, response = await self._send("POST", path, json_body, timeout, stream=True)
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self._transport_error(url, exc) from exc
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        json_body: Any,
        timeout: float | None,
        *,
        stream: bool,
        absolute_url: str | None = None,
    ) -> tuple[str, httpx.Response]:
        """``(url, response)`` from the first candidate host that takes the connection (a refused or
        unreachable host: the next one); any other transport failure, or an HTTP error status, becomes our
        error. A streamed response is returned open: the caller closes it."""
        client = self._client()
        last_exc: Exception | None = None
        urls = [absolute_url] if absolute_url else [self._join(base, path) for base in self._ordered_bases()]
        for url in urls:
            request = client.build_request(method, url, json=json_body, timeout=self._timeout(timeout))
            try:
                response = await client.send(request, stream=stream)
            except _CONNECT_FAILURES as exc:
                last_exc = exc
                log.debug("%s: cannot connect to %s (%s)", self.provider, url, exc)
                continue
            except httpx.HTTPError as exc:
                raise self._transport_error(url, exc) from exc
            self._remember(url, path)
            if response.status_code >= 400:
                body = response.text if not stream else await self._read_and_close(response, url)
                raise self.map_status(response.status_code, body, url, response.headers)
            return url, response
        raise self._connect_error(urls, last_exc) from last_exc

    async def _read_and_close(self, response: httpx.Response, url: str) -> str:
        try:
            return (await response.aread()).decode("utf-8", "replace")
        except httpx.HTTPError as exc:
            raise self._transport_error(url, exc) from exc
        finally:
            await response.aclose()

    async def stream_events(
        self, path: str, json_body: Any, *, timeout: float | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """POST and yield each server-sent event's JSON ``data`` (stops at ``data: [DONE]``).

        Use it inside ``contextlib.aclosing`` so that stopping early closes the HTTP stream at once.
        """
        async with contextlib.aclosing(self.stream_lines(path, json_body, timeout=timeout)) as lines:
            async for line in lines:
                event = _sse_data(line)
                if event is _DONE:
                    return
                if event is not None:
                    yield event

    # -- helpers -----------------------------------------------------------------------------------
    def _timeout(self, timeout: float | None) -> httpx.Timeout:
        if not timeout or timeout == self.timeout:
            return self._default_timeout
        return httpx.Timeout(timeout, connect=self.connect_timeout)

    def _ordered_bases(self) -> list[str]:
        return [self.base_url] + [c for c in self.candidates if c != self.base_url]

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` at the base URL that answered last."""
        return self._join(self.base_url, path)

    @staticmethod
    def _join(base: str, path: str) -> str:
        """``path`` relative to ``base``; a leading "/" means relative to the server root (``base`` minus /v1)."""
        if not path:
            return base
        if path.startswith("/"):
            return server_root(base) + path
        return base.rstrip("/") + "/" + path

    def _remember(self, url: str, path: str) -> None:
        for base in self.candidates:
            if url == self._join(base, path):
                if base != self.base_url:
                    log.info("%s: answered at %s (fallback from %s)", self.provider, base, self.candidates[0])
                self.base_url = base
                return

    def map_status(
        self, status: int, body: str, url: str, headers: httpx.Headers | dict[str, str] | None = None
    ) -> ProviderError:
        """Translate an HTTP error status and body into our error hierarchy."""
        text = error_text(body)
        common: dict[str, Any] = {"provider": self.provider, "url": url, "status_code": status, "body": body[:4000]}
        overflow = classify_overflow(body) if status in (400, 413, 422, 500) else None
        if overflow is not None:
            return ContextOverflow(
                f"{self.provider}: the prompt does not fit the model's context window ({text})",
                prompt_tokens=overflow.prompt_tokens,
                context_length=overflow.context_length,
                fix=self._fix_for("context"),
                **common,
            )
        if status in (401, 403):
            return AuthenticationFailed(
                f"{self.provider} refused the request (HTTP {status}): {text}", fix=self._fix_for("auth"), **common
            )
        if status == 429 or status == 529:
            retry_after = parse_retry_after((headers or {}).get("retry-after"))
            return RateLimited(
                f"{self.provider} is rate limiting or overloaded (HTTP {status}): {text}",
                retry_after=retry_after,
                fix=self._fix_for("rate"),
                **common,
            )
        if status in (400, 404, 422) and looks_like_model_missing(body):
            return ModelNotLoaded(f"{self.provider}: {text}", fix=self._fix_for("model"), **common)
        if status == 408:
            return ProviderUnavailable(f"{self.provider} timed out (HTTP 408)", fix=self._fix_for("timeout"), **common)
        if status >= 500:
            if looks_like_model_missing(text):
                return ModelNotLoaded(f"{self.provider}: {text}", fix=self._fix_for("model"), **common)
            return ServerError(
                f"{self.provider} failed with HTTP {status}: {text}", fix=self._fix_for("server"), **common
            )
        return BadRequest(f"{self.provider} rejected the request (HTTP {status}): {text}", **common)

    def error_from_event(self, event: dict[str, Any], url: str | None = None) -> ProviderError:
        """The error carried by a stream frame (``{"error": …}`` sent after HTTP 200, as LM Studio does).

        Mapped like an HTTP error: an overflow or a missing model by its wording, anything else as a
        server failure (the request itself was accepted).
        """
        error = event.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return self.map_status(status, json.dumps(event), url or self.base_url)

    def _connect_error(self, urls: list[str], exc: Exception | None) -> ProviderUnavailable:
        tried = ", ".join(urls)
        return ProviderUnavailable(
            f"{self.provider}: connection refused or host unreachable (tried {tried})",
            fix=self._fix_for("connect"),
            provider=self.provider,
            url=urls[0] if urls else None,
        )

    def _transport_error(self, url: str, exc: httpx.HTTPError) -> ProviderUnavailable:
        """A timeout, or a connection dropped while sending or reading (both transient)."""
        if isinstance(exc, httpx.TimeoutException):
            message, kind = f"no answer from {url} in time ({type(exc).__name__})", "timeout"
        else:
            message, kind = f"the connection to {url} was dropped ({type(exc).__name__}: {exc})", "server"
        return ProviderUnavailable(
            f"{self.provider}: {message}", fix=self._fix_for(kind), provider=self.provider, url=url
        )


_DONE: dict[str, Any] = {}


def _sse_data(line: str) -> dict[str, Any] | None:
    """The JSON of a ``data: {...}`` line; :data:`_DONE` for ``data: [DONE]``; ``None`` for anything else."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return _DONE
    if not payload:
        return None
    try:
        value = json.loads(payload)
    except ValueError:
        log.warning("ignoring undecodable stream line: %.200s", payload)
        return None
    return value if isinstance(value, dict) else None


async def iter_sse_json(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Decode ``data: {...}`` lines of a server-sent-event stream; stops at ``data: [DONE]``."""
    async for line in lines:
        event = _sse_data(line)
        if event is _DONE:
            return
        if event is not None:
            yield event
