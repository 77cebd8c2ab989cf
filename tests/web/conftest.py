"""Fixtures for the web tests: a real app on a real SQLite file, driven in-process through httpx."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from ctistudio.web.app import create_app

BASE = "http://127.0.0.1"  # a Host the app answers to (see web.security.HostPolicy)


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


# -- a real server and a real browser (marked tests only) ---------------------------------------------
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread of the test process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(make_app) -> Callable[..., LiveServer]:
    """``live_server(**env)``: an app on a real port (entered; stopped at the end of the test)."""
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = LiveServer(make_app(**env)).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser page (own cookies); console errors and dialogs are recorded on ``page.events``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.events = {"dialogs": [], "console_errors": [], "page_errors": []}
    page.on("dialog", lambda d: (page.events["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: m.type == "error" and page.events["console_errors"].append(m.text))
    page.on("pageerror", lambda e: page.events["page_errors"].append(str(e)))
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (test-artifacts/web/NAME.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
