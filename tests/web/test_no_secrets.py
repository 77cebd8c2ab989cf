"""No response ever carries a secret: every API route, page and error is scanned for the configured keys."""

from __future__ import annotations

import re

from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.web.app import NAV
from ctistudio.web.security import hash_password

SECRETS = {
    "OPENAI_API_KEY": "sk-openai-SECRET-0001",
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-0002",
    "CTISTUDIO_OPENAI_COMPAT_API_KEY": "compat-SECRET-0003",
    "LMSTUDIO_API_KEY": "lms-SECRET-0004",
    "CTISTUDIO_API_TOKEN": "token-SECRET-0005",
    "CTISTUDIO_SECRET_KEY": "signing-SECRET-0006",
}
PATH_VALUES = {"name": "lmstudio", "provider": "lmstudio"}


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids.get(m.group(1), PATH_VALUES.get(m.group(1), "1")), path)


async def test_no_response_contains_a_secret(make_app, open_client):
    password_hash = hash_password("a long password")
    with LMStudioDouble(api_key=SECRETS["LMSTUDIO_API_KEY"]) as lms:
        app = make_app(**{**lms.env(), **SECRETS}, CTISTUDIO_PASSWORD_HASH=password_hash)
        client = await open_client(app, headers={"Authorization": f"Bearer {SECRETS['CTISTUDIO_API_TOKEN']}"})
        responses = []
        for path, operations in app.openapi()["paths"].items():
            url = _fill(path, {})
            for method in sorted(operations):
                body = {} if method in ("post", "put", "patch") else None
                if path == "/api/benchmarks" and method == "post":
                    body = {"tasks": []}  # refused (422): a scan must not start a benchmark run
                responses.append((method.upper(), url, await client.request(method.upper(), url, json=body)))
        for path in ("/openapi.json", "/nonexistent", "/api/nonexistent", *(href for href, _ in NAV)):
            responses.append(("GET", path, await client.get(path)))
        # a save that sets keys must not echo them either
        responses.append(
            ("PUT", "/api/settings", await client.put("/api/settings", json={"openai_api_key": "sk-new-SECRET"}))
        )
    assert len(responses) > 10
    checked = [*SECRETS.values(), "sk-new-SECRET", password_hash, password_hash.split("$")[-1]]
    for method, url, response in responses:
        text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items() if k != "set-cookie")
        for secret in checked:
            assert secret not in text, f"{method} {url} ({response.status_code}) leaks a secret"
    statuses = {(m, u): r.status_code for m, u, r in responses}
    assert statuses[("GET", "/api/settings")] == 200
    assert statuses[("POST", "/api/test-lmstudio")] == 200  # authenticated with the LM Studio key, not leaking it
