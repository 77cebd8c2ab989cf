"""Finding 4: a connection test with an edited URL sent the *stored* key to that URL.

``POST /api/providers/lmstudio/test {"settings": {"lmstudio_api_url": "http://127.0.0.1:9200/v1"}}`` (and
the same with ``openai_compat_url``) used to send ``Authorization: Bearer <stored key>`` to whatever URL
the request named. Now a test (or a live model list) against another URL uses only a key entered in the
same request; the report says the stored one was withheld. A loopback listener stands in for the attacker.
"""

from __future__ import annotations

import pytest

from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.openai_compatible_double import OpenAICompatibleDouble

LMSTUDIO_KEY = "sk-stored-lmstudio-0123456789abcdef"
COMPAT_KEY = "sk-stored-compat-0123456789abcdef"


def authorizations(double) -> list[str]:
    return [r.headers.get("authorization", "") for r in double.requests]


@pytest.fixture
def listener():
    with LMStudioDouble() as double:
        yield double


@pytest.mark.parametrize(
    ("provider", "url_field", "key"),
    [("lmstudio", "lmstudio_api_url", LMSTUDIO_KEY), ("openai_compat", "openai_compat_url", COMPAT_KEY)],
)
async def test_an_edited_url_never_receives_the_stored_key(make_app, open_client, listener, provider, url_field, key):
    client = await open_client(
        make_app(
            LMSTUDIO_API_KEY=LMSTUDIO_KEY,
            CTISTUDIO_OPENAI_COMPAT_URL="http://127.0.0.1:9/v1",
            CTISTUDIO_OPENAI_COMPAT_MODEL="some-model",
            CTISTUDIO_OPENAI_COMPAT_API_KEY=COMPAT_KEY,
        )
    )
    body = {"settings": {url_field: listener.url}}
    report = await client.post(f"/api/providers/{provider}/test", json=body)
    assert report.status_code == 200, report.text
    models = await client.post(f"/api/providers/{provider}/models", json=body)
    assert models.status_code in (200, 502, 503)
    assert listener.requests, "the test did reach the edited URL"
    assert not any(key in header for header in authorizations(listener)), authorizations(listener)
    withheld = [c for c in report.json()["checks"] if c["name"] == "stored key withheld"]
    assert withheld and "only sent to the URL it was saved for" in withheld[0]["detail"]


async def test_a_key_entered_with_the_url_is_the_one_sent(make_app, open_client, listener):
    client = await open_client(make_app(LMSTUDIO_API_KEY=LMSTUDIO_KEY))
    typed = "sk-typed-in-the-form-0123456789"
    body = {"settings": {"lmstudio_api_url": listener.url, "lmstudio_api_key": typed}}
    report = (await client.post("/api/providers/lmstudio/test", json=body)).json()
    assert {f"Bearer {typed}"} == {h for h in authorizations(listener) if h}
    assert not [c for c in report["checks"] if c["name"] == "stored key withheld"]


async def test_the_saved_url_still_gets_the_saved_key(make_app, open_client):
    with OpenAICompatibleDouble(api_key=COMPAT_KEY) as server:
        client = await open_client(
            make_app(
                CTISTUDIO_OPENAI_COMPAT_URL=server.url,
                CTISTUDIO_OPENAI_COMPAT_MODEL="some-model",
                CTISTUDIO_OPENAI_COMPAT_API_KEY=COMPAT_KEY,
            )
        )
        await client.post("/api/providers/openai_compat/test")
        assert f"Bearer {COMPAT_KEY}" in authorizations(server)
