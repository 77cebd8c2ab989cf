"""The LM Studio double itself: it must answer like LM Studio, or every test built on it lies."""

from __future__ import annotations

import json

import httpx
import pytest

from ctistudio.testing.http_double import sample_for_schema
from ctistudio.testing.lmstudio_double import LMStudioDouble, Reply


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def chat(client: httpx.Client, double: LMStudioDouble, content: str = "hi", **body) -> httpx.Response:
    payload = {"model": "qwen/qwen3-4b-2507", "messages": [{"role": "user", "content": content}], **body}
    return client.post(double.url + "/chat/completions", json=payload)


def test_chat_answer_usage_and_exact_token_counts(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.reply("twelve chars")
    data = chat(client, lmstudio_double, "x" * 40).json()
    assert data["choices"][0]["message"]["content"] == "twelve chars"
    assert data["choices"][0]["finish_reason"] == "stop"
    # documented tokenizer: ceil(len/4) per text, + 4 per message
    assert data["usage"] == {"prompt_tokens": 10 + 4, "completion_tokens": 3, "total_tokens": 17}
    assert data["model"] == "qwen/qwen3-4b-2507"


def test_json_object_is_rejected_with_lm_studios_words(client, lmstudio_double: LMStudioDouble):
    response = chat(client, lmstudio_double, response_format={"type": "json_object"})
    assert response.status_code == 400
    assert response.json() == {"error": "'response_format.type' must be 'json_schema' or 'text'"}
    schema = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 1}}, "required": ["score"]}
    ok = chat(client, lmstudio_double, response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    assert json.loads(ok.json()["choices"][0]["message"]["content"]) == {"score": 1}


def test_overflow_text_when_the_prompt_exceeds_the_loaded_context(client):
    with LMStudioDouble(models={"qwen/qwen3-4b-2507": 100}) as double:
        response = chat(client, double, "y" * 400)  # 100 + 4 tokens > 100
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Trying to keep the first 104 tokens when context the overflows. However, the model is loaded with context "
        "length of only 100 tokens, which is not enough. Try to load the model with a larger context length, or "
        "provide a shorter input"
    )


def test_streamed_overflow_arrives_as_an_error_event_after_200(client):
    with LMStudioDouble(models={"qwen/qwen3-4b-2507": 100}) as double:
        body = {"model": "qwen/qwen3-4b-2507", "stream": True, "messages": [{"role": "user", "content": "y" * 400}]}
        with client.stream("POST", double.url + "/chat/completions", json=body) as response:
            lines = [line for line in response.iter_lines() if line]
    assert response.status_code == 200
    assert lines[0] == "event: error"
    assert "Trying to keep the first 104 tokens" in json.loads(lines[1][6:])["error"]


def test_stream_sends_one_chunk_per_token_then_usage_and_done(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.reply(Reply(content="abcdefghij", reasoning="hmm?"))
    body = {
        "model": "qwen/qwen3-4b-2507",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    with client.stream("POST", lmstudio_double.url + "/chat/completions", json=body) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"] and c["choices"][0]["delta"]]
    assert [d.get("reasoning_content") for d in deltas[:1]] == ["hmm?"]
    assert "".join(d.get("content", "") for d in deltas) == "abcdefghij"
    assert len(deltas) == 1 + 3
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_max_tokens_cuts_the_answer(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.reply("0123456789abcdef")
    data = chat(client, lmstudio_double, max_tokens=2).json()
    assert data["choices"][0]["message"]["content"] == "01234567"
    assert data["choices"][0]["finish_reason"] == "length"


def test_native_model_state_and_stacking_load(client, lmstudio_double: LMStudioDouble):
    models = client.get(lmstudio_double.root_url + "/api/v1/models").json()["models"]
    qwen = next(m for m in models if m["key"] == "qwen/qwen3-4b-2507")
    assert qwen["loaded_instances"] == [{"id": "qwen/qwen3-4b-2507", "config": {"context_length": 16384}}]
    assert qwen["max_context_length"] == 131072
    loaded = client.post(lmstudio_double.root_url + "/api/v1/models/load", json={"model": "qwen/qwen3-4b-2507"}).json()
    assert loaded["model_instance_id"] == "qwen/qwen3-4b-2507:2"  # stacked, at the default context
    assert loaded["config"]["context_length"] == 4096
    v0 = client.get(lmstudio_double.root_url + "/api/v0/models").json()["data"]
    assert {m["id"]: m["state"] for m in v0}["qwen/qwen3-4b-2507"] == "loaded"
    gone = client.post(
        lmstudio_double.root_url + "/api/v1/models/unload", json={"instance_id": loaded["model_instance_id"]}
    )
    assert gone.json() == {"instance_id": "qwen/qwen3-4b-2507:2"}
    assert list(lmstudio_double.models["qwen/qwen3-4b-2507"].instances) == ["qwen/qwen3-4b-2507"]


def test_older_versions_answer_unexpected_endpoint_with_200(client):
    with LMStudioDouble(api_version="v0") as double:
        response = client.get(double.root_url + "/api/v1/models")
        assert response.status_code == 200
        assert response.json() == {"error": "Unexpected endpoint or method. (GET /api/v1/models)"}
        assert client.get(double.root_url + "/api/v0/models").status_code == 200


def test_jit_loads_at_the_default_context_and_model_errors(client):
    with LMStudioDouble(models={"a/loaded": 8192, "b/downloaded": None}) as double:
        jit = chat(client, double, model="b/downloaded").json()
        assert jit["model"] == "b/downloaded" and double.context_of("b/downloaded") == 4096
        unknown = chat(client, double, model="c/unknown")
        assert unknown.status_code == 400
        assert unknown.json()["error"]["message"].startswith('Invalid model identifier "c/unknown"')
    with LMStudioDouble(models={"b/downloaded": None}, embeddings={}, jit_loading=False) as double:
        none = chat(client, double, model="b/downloaded")
        assert none.status_code == 400
        assert none.json()["error"]["message"].startswith("No models loaded.")


def test_api_key_required_with_lm_studios_wording(client):
    with LMStudioDouble(api_key="sk-lm-secret") as double:
        missing = client.get(double.url + "/models")
        assert missing.status_code == 401
        assert missing.json()["error"]["message"].startswith("An LM Studio API token is required")
        wrong = client.get(double.url + "/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "invalid" in wrong.json()["error"]["message"]
        ok = client.get(double.url + "/models", headers={"Authorization": "Bearer sk-lm-secret"})
        assert ok.status_code == 200


def test_faults_apply_to_the_next_requests_only(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.server_error()
    lmstudio_double.rate_limit(retry_after=3)
    first, second, third = (chat(client, lmstudio_double) for _ in range(3))
    assert first.status_code == 500 and "channel error" in first.json()["error"]
    assert second.status_code == 429 and second.headers["retry-after"] == "3"
    assert third.status_code == 200
    lmstudio_double.drop_connection()
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, lmstudio_double)


def test_dropped_stream_is_cut_mid_body(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.reply("a long answer that will not arrive whole")
    lmstudio_double.drop_connection(after_chunks=2)
    body = {"model": "qwen/qwen3-4b-2507", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    seen = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", lmstudio_double.url + "/chat/completions", json=body) as r,
    ):
        for line in r.iter_lines():
            seen.append(line)
    assert len([line for line in seen if line.startswith("data: ")]) == 2


def test_responder_sees_the_request_and_the_log_records_it(client, lmstudio_double: LMStudioDouble):
    lmstudio_double.responder = lambda call: "yes" if "PowerShell" in call.last_user else None
    assert chat(client, lmstudio_double, "Is PowerShell here?").json()["choices"][0]["message"]["content"] == "yes"
    assert chat(client, lmstudio_double, "other").json()["choices"][0]["message"]["content"] == "OK"
    logged = lmstudio_double.requests_to("/v1/chat/completions")
    assert [r.body["messages"][0]["content"] for r in logged] == ["Is PowerShell here?", "other"]
    assert all(r.status == 200 and r.finished is not None for r in logged)


def test_embeddings_are_deterministic_and_similar_texts_are_closer(client, lmstudio_double: LMStudioDouble):
    body = {
        "model": "text-embedding-nomic-embed-text-v1.5",
        "input": ["powershell encoded command", "powershell command", "tulips"],
    }
    data = client.post(lmstudio_double.url + "/embeddings", json=body).json()["data"]
    a, b, c = (row["embedding"] for row in data)
    assert dot(a, b) > dot(a, c)
    assert client.post(lmstudio_double.url + "/embeddings", json=body).json()["data"][0]["embedding"] == a


def test_sample_for_schema_covers_pydantic_shapes():
    schema = {
        "$defs": {"Kind": {"enum": ["process", "file"], "type": "string"}},
        "type": "object",
        "properties": {
            "kind": {"$ref": "#/$defs/Kind"},
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["kind", "score", "tags", "note"],
    }
    assert sample_for_schema(schema) == {"kind": "process", "score": 1, "tags": [""], "note": ""}


def dot(x: list[float], y: list[float]) -> float:
    return sum(p * q for p, q in zip(x, y, strict=True))


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_is_no_longer_in_flight_once_the_client_has_the_whole_answer(client, lmstudio_double, stream):
    # The router's in-flight limit is checked against the double's peak; if the double still counted an
    # answered request, a client's next request (its slot already free) would show one too many.
    for _ in range(100):
        response = chat(client, lmstudio_double, stream=stream)
        assert response.status_code == 200 and response.content  # the whole body has been read
        assert lmstudio_double.in_flight == 0
    assert lmstudio_double.peak_in_flight == 1
