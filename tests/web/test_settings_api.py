"""GET|PUT /api/settings: secrets write-only, validation with the variable's name, effect without restart."""

from __future__ import annotations

import asyncio

from tests.web.conftest import browser_headers


def by_name(view: dict) -> dict[str, dict]:
    return {s["name"]: s for s in view["settings"]}


async def test_secrets_show_set_or_not_set(make_app, open_client):
    client = await open_client(make_app(OPENAI_API_KEY="sk-test-secret-value-1"))
    view = by_name((await client.get("/api/settings")).json())
    assert view["openai_api_key"]["value"] == "set"
    assert view["anthropic_api_key"]["value"] == "not set"
    assert view["openai_api_key"]["secret"] is True


async def test_save_applies_without_restart_in_another_process_view(make_app, open_client, monkeypatch):
    first = await open_client(make_app())
    second = await open_client(make_app())  # another "process": its own store and settings source
    headers = await browser_headers(first)
    saved = await first.put(
        "/api/settings",
        json={"lmstudio_api_url": "http://127.0.0.1:5555/v1", "lmstudio_temperature": 0.4, "anthropic_api_key": "sk-a"},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    view = by_name(saved.json())
    assert view["lmstudio_api_url"]["value"] == "http://127.0.0.1:5555/v1"
    assert view["lmstudio_api_url"]["overridden"] is True
    assert view["anthropic_api_key"]["value"] == "set"
    assert "sk-a" not in saved.text
    for _ in range(40):  # the other app re-reads overrides at most once a second
        other = by_name((await second.get("/api/settings")).json())
        if other["lmstudio_temperature"]["value"] == 0.4:
            break
        await asyncio.sleep(0.1)
    assert other["lmstudio_temperature"]["value"] == 0.4
    assert other["lmstudio_api_url"]["value"] == "http://127.0.0.1:5555/v1"
    providers = (await second.get("/api/providers", params={"probe": "false"})).json()
    assert next(p for p in providers["providers"] if p["name"] == "lmstudio")["url"] == "http://127.0.0.1:5555/v1"


async def test_invalid_value_is_refused_with_the_variable_name(client):
    headers = await browser_headers(client)
    response = await client.put("/api/settings", json={"lmstudio_api_url": "ftp://nope"}, headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert "LMSTUDIO_API_URL" in body["detail"] and body["fix"]
    too_hot = await client.put("/api/settings", json={"lmstudio_temperature": 9}, headers=headers)
    assert too_hot.status_code == 400 and "LMSTUDIO_TEMPERATURE" in too_hot.json()["detail"]
    view = by_name((await client.get("/api/settings")).json())
    assert view["lmstudio_temperature"]["overridden"] is False  # nothing was saved


async def test_clear_resets_to_env_and_empty_secret_keeps_key(make_app, open_client):
    client = await open_client(make_app(LMSTUDIO_SEED="11"))
    headers = await browser_headers(client)
    await client.put("/api/settings", json={"lmstudio_seed": 99, "openai_api_key": "sk-keep-me"}, headers=headers)
    kept = await client.put("/api/settings", json={"openai_api_key": ""}, headers=headers)
    assert by_name(kept.json())["openai_api_key"]["value"] == "set"
    cleared = by_name((await client.put("/api/settings", json={"clear": ["lmstudio_seed"]}, headers=headers)).json())
    assert cleared["lmstudio_seed"]["value"] == 11 and cleared["lmstudio_seed"]["overridden"] is False


async def test_settings_page_renders_every_group(client):
    page = await client.get("/settings")
    assert page.status_code == 200
    for text in ("LM Studio server URL (base)", "LM Studio embedding URL", "Test Connection (lmstudio)", "Load model"):
        assert text in page.text
