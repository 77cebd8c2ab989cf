"""Finding 7, the low ones: logout, Secure cookies, javascript: URLs, saved secrets, .env mode, odd URLs, /health."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest
from tests.web.conftest import BASE, browser_headers, csrf_token

from ctistudio.cli.init import update_env_file
from ctistudio.config import load_settings
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.web.security import SESSION_COOKIE, hash_password

PASSWORD = "correct horse battery staple"
SECRET_KEY = "a-fixed-signing-key-so-cookies-outlive-the-app"
TOKEN = "tok-" + "0123456789abcdef" * 2


def _client(app, address: str = "127.0.0.1", base: str = BASE) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url=base)


async def _logged_in(client: httpx.AsyncClient) -> str:
    token = await csrf_token(client, "/login")
    assert (await client.post("/login", data={"secret": PASSWORD, "csrf_token": token})).status_code == 303
    return client.cookies[SESSION_COOKIE]


async def test_logout_revokes_the_cookie_even_after_a_restart(make_app):
    env = {"CTISTUDIO_PASSWORD_HASH": hash_password(PASSWORD), "CTISTUDIO_SECRET_KEY": SECRET_KEY}
    app = make_app(**env)
    async with app.router.lifespan_context(app), _client(app) as browser, _client(app) as thief:
        stolen = await _logged_in(browser)
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert (await thief.get("/api/settings")).status_code == 200
        await browser.post("/logout", data={"csrf_token": await csrf_token(browser, "/settings")})
        assert (await thief.get("/api/settings")).status_code == 401
    again = make_app(**env)  # a new process with the same signing key: the cookie verifies, but is revoked
    async with again.router.lifespan_context(again), _client(again) as thief:
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert (await thief.get("/api/settings")).status_code == 401
    assert stat.S_IMODE(os.stat(load_settings(env_file=None).data_dir / "revoked-sessions.json").st_mode) == 0o600


@pytest.mark.parametrize(
    ("env", "address", "forwarded", "secure"),
    [
        ({}, "127.0.0.1", None, False),
        ({"CTISTUDIO_COOKIE_SECURE": "true"}, "127.0.0.1", None, True),
        ({"CTISTUDIO_TRUSTED_PROXIES": "127.0.0.1"}, "127.0.0.1", "https", True),
        ({"CTISTUDIO_TRUSTED_PROXIES": "127.0.0.1"}, "192.0.2.10", "https", False),  # not the proxy: not believed
        ({"CTISTUDIO_COOKIE_SECURE": "false", "CTISTUDIO_TRUSTED_PROXIES": "127.0.0.1"}, "127.0.0.1", "https", False),
    ],
)
async def test_session_cookie_secure_flag(make_app, env, address, forwarded, secure):
    app = make_app(**env)
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    async with app.router.lifespan_context(app), _client(app, address) as client:
        cookie = (await client.get("/", headers=headers)).headers["set-cookie"]
    assert ("; Secure" in cookie) is secure, cookie


async def test_javascript_urls_are_neither_stored_nor_linked(client):
    text = "---\ntitle: Loader report\nurl: javascript:alert(document.cookie)\n---\n" + "The loader ran rundll32. " * 20
    refused = await client.post("/api/articles", json={"text": text, "url": "javascript:alert(1)"})
    assert refused.status_code == 422
    stored = await client.post("/api/articles", json={"text": text})
    assert stored.status_code == 201 and stored.json()["url"] is None
    page = await client.get(f"/articles/{stored.json()['article_id']}")
    assert page.status_code == 200 and "javascript:" not in page.text


async def test_saved_secrets_are_encrypted_with_a_private_key_file(make_app, open_client):
    with LMStudioDouble(api_key="sk-saved-in-the-settings-page-123") as lms:
        client = await open_client(make_app(**{k: v for k, v in lms.env().items() if k != "LMSTUDIO_API_KEY"}))
        headers = await browser_headers(client)
        saved = await client.put("/api/settings", json={"lmstudio_api_key": lms.api_key}, headers=headers)
        assert saved.status_code == 200
        settings = load_settings(env_file=None)
        with sqlite3.connect(settings.data_dir / "ctistudio.db") as db:
            rows = dict(db.execute("SELECT key, value FROM settings_overrides").fetchall())
        assert lms.api_key not in str(rows) and "enc:fernet:" in str(rows["lmstudio_api_key"])
        key_file = settings.data_dir / "secrets.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        report = (await client.post("/api/providers/lmstudio/test", headers=headers)).json()
        assert f"Bearer {lms.api_key}" in {r.headers.get("authorization") for r in lms.requests}, report


def test_env_file_is_written_for_its_owner_only(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=sk-old\n")
    env.chmod(0o644)
    update_env_file(env, {"ANTHROPIC_API_KEY": "sk-ant"})
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    assert env.read_text() == "OPENAI_API_KEY=sk-old\nANTHROPIC_API_KEY=sk-ant\n"


@pytest.mark.parametrize("url", ["http://0177.0.0.1:9100/", "http://xn--/", "http://a..b/", "http://1.2.3.4:99999/"])
async def test_odd_urls_are_a_400_not_a_500(client, url):
    answer = await client.post("/api/articles/url", json={"url": url})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_input"


async def test_health_without_login_shows_only_the_status(make_app, open_client):
    client = await open_client(make_app(CTISTUDIO_API_TOKEN=TOKEN, LMSTUDIO_API_KEY="sk-not-for-probes"))
    public = await client.get("/health")
    assert public.status_code == 200
    assert set(public.json()) == {"status", "database", "detail"} and "127.0.0.1:9" not in public.text
    full = await client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
    assert full.status_code == 200 and {p["name"] for p in full.json()["providers"]} >= {"lmstudio"}
