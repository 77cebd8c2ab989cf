"""Authentication, CSRF, body limits, headers and the non-loopback refusal."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.web.conftest import BASE, browser_headers, csrf_token

from ctistudio.errors import ConfigurationError
from ctistudio.web.security import (
    AuthConfig,
    Session,
    SessionSigner,
    hash_password,
    require_auth_for_host,
    verify_password,
)

PASSWORD = "correct horse battery"
TOKEN = "tok-0123456789abcdef-long-enough"  # 24+ characters: what serving beyond loopback needs


def test_password_hash_round_trip_and_salt():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # salted
    assert verify_password(PASSWORD, first)
    assert not verify_password("wrong password", first)
    assert not verify_password(PASSWORD, "scrypt$garbage")


def test_session_cookie_is_signed():
    signer = SessionSigner(b"k" * 32)
    cookie = signer.dumps(Session(csrf="abc", user="admin"))
    assert signer.loads(cookie).user == "admin"
    payload, signature = cookie.rsplit(".", 1)
    forged = SessionSigner(b"other key" * 4).dumps(Session(csrf="abc", user="admin"))
    assert signer.loads(forged) is None
    assert signer.loads(payload + "." + signature[:-2] + "xx") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_non_loopback_needs_authentication(host):
    with pytest.raises(ConfigurationError, match="refusing to listen"):
        require_auth_for_host(host, AuthConfig(password_hash=None, api_token=None))
    require_auth_for_host(host, AuthConfig(password_hash=None, api_token=TOKEN))  # allowed with auth


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_needs_no_authentication(host):
    require_auth_for_host(host, AuthConfig(password_hash=None, api_token=None))


def test_serve_refuses_public_bind_without_auth(tmp_path):
    from typer.testing import CliRunner

    from ctistudio.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8999"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "CTISTUDIO_PASSWORD_HASH" in result.output


async def test_auth_required_for_api_and_pages(make_app, open_client):
    client = await open_client(make_app(CTISTUDIO_API_TOKEN=TOKEN, CTISTUDIO_PASSWORD_HASH=hash_password(PASSWORD)))
    api = await client.get("/api/providers", params={"probe": "false"})
    assert api.status_code == 401
    assert api.json()["error"] == "not_authenticated"
    page = await client.get("/settings")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/settings"
    assert (await client.get("/health")).status_code in (200, 503)  # open to probes
    wrong = await client.get("/api/providers", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await client.get("/api/providers", params={"probe": "false"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    also = await client.get("/api/settings", headers={"X-API-Token": TOKEN})
    assert also.status_code == 200


async def test_login_with_password_then_logout(make_app, open_client):
    client = await open_client(make_app(CTISTUDIO_PASSWORD_HASH=hash_password(PASSWORD)))
    token = await csrf_token(client, "/login")
    refused = await client.post("/login", data={"secret": PASSWORD, "next": "/runs"})
    assert refused.status_code == 403  # no CSRF token
    bad = await client.post("/login", data={"secret": "nope", "csrf_token": token})
    assert bad.status_code == 401 and "Wrong password" in bad.text
    good = await client.post("/login", data={"secret": PASSWORD, "next": "//evil.example/x", "csrf_token": token})
    assert good.status_code == 303 and good.headers["location"] == "/"  # no open redirect
    assert (await client.get("/settings")).status_code == 200
    new_token = await csrf_token(client, "/settings")
    assert new_token != token  # a new session (and CSRF token) after login
    await client.post("/logout", data={"csrf_token": new_token})
    assert (await client.get("/settings")).status_code == 303


async def test_csrf_on_unsafe_requests(client):
    headers = await browser_headers(client)
    body = {"lmstudio_temperature": 0.2}
    missing = await client.put("/api/settings", json=body)
    assert missing.status_code == 403 and missing.json()["error"] == "csrf_refused"
    wrong = await client.put("/api/settings", json=body, headers={**headers, "X-CSRF-Token": "x" * 32})
    assert wrong.status_code == 403
    cross = await client.put("/api/settings", json=body, headers={**headers, "Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.json()["detail"]
    ok = await client.put("/api/settings", json=body, headers=headers)
    assert ok.status_code == 200, ok.text


async def test_script_without_browser_session_needs_no_csrf_when_auth_is_off(make_app):
    app = make_app()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        response = await client.put("/api/settings", json={"lmstudio_seed": 7})
        assert response.status_code == 200
        # … but a browser-like cross-site request is refused even then
        cross = await client.put("/api/settings", json={"lmstudio_seed": 8}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403


async def test_body_limits(client):
    headers = await browser_headers(client)
    big = {"lmstudio_model": "x" * (2 * 1024 * 1024)}
    response = await client.put("/api/settings", json=big, headers=headers)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]

    async def chunks():
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB without a Content-Length

    streamed = await client.put(
        "/api/settings", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_field_limits_give_a_reason(client):
    headers = await browser_headers(client)
    response = await client.put("/api/settings", json={"lmstudio_model": "m" * 3000}, headers=headers)
    assert response.status_code == 422
    assert "lmstudio_model" in response.json()["detail"]
    unknown = await client.put("/api/settings", json={"api_token": "x"}, headers=headers)
    assert unknown.status_code == 422 and "api_token" in unknown.json()["detail"]


async def test_security_headers_and_escaped_errors(client):
    page = await client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-frame-options"] == "DENY"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    missing = await client.get("/<script>alert(1)</script>")
    assert missing.status_code == 404
    assert "<script>alert(1)</script>" not in missing.text
    assert re.search(r"&lt;script&gt;", missing.text)
