"""Finding 5: no brute-force limit, and a one-character API token accepted beyond loopback.

300 wrong ``/login`` posts at 27/s and 1,000 wrong bearer tokens at 512/s all answered 401 with no delay,
and ``CTISTUDIO_API_TOKEN=a`` was accepted for ``serve --host 0.0.0.0``. Now each client address gets
five free failures, then exponential backoff with 429 + ``Retry-After`` (nothing is checked while it is
blocked); tokens need 24 characters off loopback, and ``hash-password --token`` / ``init --api-token``
generate one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from tests.web.conftest import BASE, csrf_token
from typer.testing import CliRunner

from ctistudio.cli.main import app as cli_app
from ctistudio.errors import ConfigurationError
from ctistudio.web.security import (
    FREE_FAILURES,
    MIN_TOKEN_CHARS,
    AuthConfig,
    LoginThrottle,
    TooManyAttempts,
    hash_password,
    require_auth_for_host,
)

PASSWORD = "correct horse battery staple"
TOKEN = "tok-" + "0123456789abcdef" * 2


def _client(app, address: str = "203.0.113.7") -> httpx.AsyncClient:
    """A client of ``app`` that the app sees coming from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


async def test_wrong_tokens_get_429_with_retry_after_then_even_the_right_one_waits(make_app):
    app = make_app(CTISTUDIO_API_TOKEN=TOKEN)
    async with (
        app.router.lifespan_context(app),
        _client(app) as attacker,
        _client(app, "198.51.100.9") as other,
    ):
        statuses = []
        for attempt in range(FREE_FAILURES + 3):
            answer = await attacker.get("/api/settings", headers={"Authorization": f"Bearer guess-{attempt}"})
            statuses.append(answer.status_code)
        assert statuses[: FREE_FAILURES + 1] == [401] * (FREE_FAILURES + 1)
        assert set(statuses[FREE_FAILURES + 1 :]) == {429}
        blocked = await attacker.get("/api/settings", headers={"Authorization": f"Bearer {TOKEN}"})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
        assert blocked.json()["error"] == "too_many_attempts"
        # another address is not affected
        assert (await other.get("/api/settings", headers={"X-API-Token": TOKEN})).status_code == 200


async def test_wrong_passwords_get_429_and_the_login_page_says_when_to_retry(make_app):
    app = make_app(CTISTUDIO_PASSWORD_HASH=hash_password(PASSWORD))
    async with app.router.lifespan_context(app), _client(app) as browser:
        token = await csrf_token(browser, "/login")
        statuses = []
        for attempt in range(FREE_FAILURES + 2):
            answer = await browser.post("/login", data={"secret": f"wrong {attempt}", "csrf_token": token})
            statuses.append(answer.status_code)
        assert statuses == [401] * (FREE_FAILURES + 1) + [429]
        right = await browser.post("/login", data={"secret": PASSWORD, "csrf_token": token})
        assert right.status_code == 429 and "Retry-After" in right.headers
        assert "too many failed login" in right.text


def test_backoff_doubles_and_forgets_a_success():
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES):
        throttle.failed("a")
    throttle.check("a")  # still free
    waits = []
    for _ in range(4):
        throttle.failed("a")
        with pytest.raises(TooManyAttempts) as blocked:
            throttle.check("a")
        waits.append(blocked.value.retry_after)
        now[0] += blocked.value.retry_after
    assert waits == [2, 4, 8, 16]
    throttle.succeeded("a")
    throttle.failed("a")
    throttle.check("a")


@pytest.mark.parametrize("token", ["a", "x" * (MIN_TOKEN_CHARS - 1)])
def test_short_tokens_are_refused_beyond_loopback(token):
    with pytest.raises(ConfigurationError, match=f"at least {MIN_TOKEN_CHARS}"):
        require_auth_for_host("0.0.0.0", AuthConfig(password_hash=None, api_token=token))
    require_auth_for_host("127.0.0.1", AuthConfig(password_hash=None, api_token=token))  # this machine only
    require_auth_for_host("0.0.0.0", AuthConfig(password_hash=None, api_token=TOKEN))


def test_serve_refuses_a_one_character_token_on_a_public_address(monkeypatch):
    monkeypatch.setenv("CTISTUDIO_API_TOKEN", "a")
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "8999"])
    assert result.exit_code == 1 and "at least 24" in result.output and "hash-password --token" in result.output


def test_hash_password_and_init_generate_long_tokens(tmp_path: Path, monkeypatch):
    runner = CliRunner()
    printed = runner.invoke(cli_app, ["hash-password", "--token"])
    assert printed.exit_code == 0
    token = printed.stdout.strip()
    assert len(token) >= 40 and token.replace("-", "").replace("_", "").isalnum()
    env_file = tmp_path / "team.env"
    command = ["init", "--yes", "--no-lmstudio", "--api-token", "--skip-test", "--env-file", str(env_file)]
    written = runner.invoke(cli_app, command)
    assert written.exit_code == 0, written.output
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert len(values["CTISTUDIO_API_TOKEN"]) >= 40 and values["CTISTUDIO_API_TOKEN"] not in written.output
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
