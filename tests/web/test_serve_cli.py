"""``ctistudio demo`` and ``ctistudio serve`` as a user runs them: a real process on a real port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
from tests.web.conftest import free_port


def _start(*args: str) -> tuple[subprocess.Popen, list[str]]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        # loopback only: no first-use model download (the embedded engine is off, embeddings go to the
        # unreachable LM Studio the suite points at, and any index lookup would hit a dead local port)
        "CTISTUDIO_EMBEDDED": "false",
        "CTISTUDIO_EMBEDDING_PROVIDER": "lmstudio",
        "CTISTUDIO_PYPI_INDEX_URL": "http://127.0.0.1:9/simple",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ctistudio.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "serving on" in line:
            url = re.search(r"http://\S+/", line).group(0)
            while time.monotonic() < deadline:  # the line is printed just before the socket is bound
                try:
                    httpx.get(url + "health", timeout=2)
                    return process, lines
                except httpx.TransportError:
                    time.sleep(0.1)
    process.kill()
    process.wait()
    process.stdout.close()
    raise AssertionError("the server did not start:\n" + "".join(lines))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=20)
    process.stdout.close()


def test_demo_stores_the_article_once_and_serves_it():
    port = free_port()
    process, lines = _start("demo", "--port", str(port))
    try:
        output = "".join(lines)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/articles/(\d+))", output)
        assert match and "demo article stored" in output, output
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200 and "Operation Paper Lantern" in page.text
        assert "Run pipeline" in page.text or "pipeline" in page.text.lower()
    finally:
        _stop(process)
    again, lines = _start("demo", "--port", str(port))
    try:
        assert "demo article already stored" in "".join(lines)
    finally:
        _stop(again)


def test_serve_on_a_public_address_needs_auth_and_works_with_a_token(monkeypatch):
    port = free_port()
    refused = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "serve", "--host", "0.0.0.0", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "refusing to listen on 0.0.0.0" in refused.stderr
    monkeypatch.setenv("CTISTUDIO_API_TOKEN", "a-long-test-token")
    process, _ = _start("serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/settings", timeout=10).status_code == 401
        ok = httpx.get(f"{base}/api/settings", headers={"Authorization": "Bearer a-long-test-token"}, timeout=10)
        assert ok.status_code == 200
        assert httpx.get(f"{base}/health", timeout=10).status_code in (200, 503)
        assert httpx.get(f"{base}/docs", timeout=10).status_code in (200, 401)
    finally:
        _stop(process)


def test_hash_password_prints_a_hash_the_app_accepts():
    from ctistudio.web.security import AuthConfig

    result = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "hash-password"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    auth = AuthConfig(password_hash=stored, api_token=None)
    assert auth.login_ok("correct horse battery") and not auth.login_ok("wrong horse battery")
    short = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "hash-password"], input="short\n", capture_output=True, text=True
    )
    assert short.returncode == 1 and "at least 8" in short.stderr
