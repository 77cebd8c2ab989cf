"""Fixtures for the web tests: a real app on a real SQLite file, driven in-process through httpx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from ctistudio.web.app import create_app

BASE = "http://testserver"


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """``make_app(**env)``: set env vars, then build an app (settings from env, store in the test's tmp dir)."""

    def make(**env: str):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return create_app(env_file=None)

    return make


@pytest.fixture
async def open_client() -> AsyncIterator[Callable[..., object]]:
    """``await open_client(app)``: an httpx client for ``app`` with its lifespan running."""
    async with AsyncExitStack() as stack:

        async def opener(app, **kwargs) -> httpx.AsyncClient:
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE, **kwargs))

        yield opener


@pytest.fixture
async def client(make_app, open_client) -> httpx.AsyncClient:
    return await open_client(make_app())


async def csrf_token(client: httpx.AsyncClient, page: str = "/") -> str:
    """The CSRF token of this client's session, as a page carries it (and the session cookie with it)."""
    response = await client.get(page)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
    assert match, f"no CSRF token on {page} ({response.status_code})"
    return match.group(1)


async def browser_headers(client: httpx.AsyncClient, page: str = "/") -> dict[str, str]:
    """Headers a same-origin page script sends: the Origin and the session's CSRF token."""
    return {"X-CSRF-Token": await csrf_token(client, page), "Origin": BASE}
