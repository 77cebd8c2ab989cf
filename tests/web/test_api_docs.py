"""``/docs`` is served from this server: no CDN, no inline script, the strict CSP applies."""

from __future__ import annotations

import re


async def test_docs_page_uses_only_local_assets(client):
    response = await client.get("/docs")
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "<script>" not in response.text  # the CSP allows no inline script
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for asset in sources:
        assert (await client.get(asset)).status_code == 200, asset


async def test_openapi_schema_lists_the_seed_endpoint(client):
    schema = (await client.get("/openapi.json")).json()
    assert "/api/test-lmstudio" in schema["paths"]
    assert "/docs" not in schema["paths"]
