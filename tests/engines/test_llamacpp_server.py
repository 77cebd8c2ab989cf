"""The llama.cpp server provider against REAL servers with the packaged 0.5B model.

llama-server (llama.cpp's own, run by xllamacpp): /health, /props per-slot context, /tokenize, slots,
timings, json_schema. llama-cpp-python's server: no /props, /extras/tokenize, json_object + schema.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel

from ctistudio.config import load_settings
from ctistudio.llm import ContextOverflow, Gateway
from ctistudio.llm.provider import estimate_tokens
from ctistudio.llm.providers.embedded import EmbeddedLlamaServer
from ctistudio.llm.providers.llamacpp_server import SHARED_PREFIX_FILE, LlamaCppServerProvider
from ctistudio.llm.types import ChatRequest, Message

pytestmark = [pytest.mark.slow, pytest.mark.native]

SAMPLE = "Hello world, powershell -enc"  # 7 tokens for Qwen2.5's tokenizer


class Tactic(BaseModel):
    tactic: Literal["execution", "persistence", "exfiltration"]
    tool: str


def gateway_for(url: str, **fields) -> Gateway:
    values = {"llamacpp_enabled": True, "llamacpp_server_url": url, "llm_provider": "llamacpp", "embedded": False}
    return Gateway(load_settings({**values, **fields}, env_file=None))


# -- llama-server --------------------------------------------------------------------------------
async def test_discovers_llama_server_its_window_and_slots(llama_server):
    provider = LlamaCppServerProvider(llama_server.url)
    assert await provider.detect() == "llama-server"
    assert (await provider.health()).ok
    assert await provider.context_length("qwen-test") == 512  # n_ctx 1,024 over 2 slots, from /props
    assert await provider.slot_count() == 2
    (model,) = await provider.models()
    assert model.id == "qwen-test" and model.max_context_length == 32768 and model.loaded
    await provider.aclose()


async def test_exact_token_counts(llama_server):
    provider = LlamaCppServerProvider(llama_server.url)
    assert await provider.count_tokens(SAMPLE) == 7
    assert estimate_tokens(SAMPLE) != 7  # the estimate would have been used without /tokenize
    await provider.aclose()


async def test_chat_through_the_gateway(llama_server):
    async with gateway_for(llama_server.url) as gateway:
        result = await gateway.chat("Answer with one word: what is the capital of France?", max_tokens=8)
    assert "paris" in result.text.lower()
    assert result.provider == "llamacpp" and result.model == "qwen-test"
    assert result.usage.prompt_tokens and result.usage.completion_tokens
    assert result.timings.generation_tokens_per_s and result.timings.prompt_tokens_per_s  # server timings
    assert result.fit.context_length == 512


async def test_streaming(llama_server):
    async with gateway_for(llama_server.url) as gateway:
        deltas = [d async for d in gateway.stream("Count from 1 to 5, separated by spaces.", max_tokens=16)]
    final = deltas[-1]
    assert final.done and len(deltas) > 3
    assert "".join(d.text for d in deltas).strip() == final.result.text
    assert "3" in final.result.text
    assert final.result.timings.time_to_first_token is not None


async def test_json_schema_output(llama_server):
    async with gateway_for(llama_server.url) as gateway:
        result = await gateway.chat(
            "The attacker ran mimikatz to dump credentials. Classify the tactic and name the tool.",
            output_type=Tactic,
            max_tokens=40,
        )
    assert isinstance(result.parsed, Tactic) and "mimikatz" in result.parsed.tool.lower()


async def test_the_servers_own_overflow_error(llama_server):
    provider = LlamaCppServerProvider(llama_server.url)
    request = ChatRequest(messages=[Message(role="user", content="wmic process call create " * 300)], max_tokens=8)
    with pytest.raises(ContextOverflow) as caught:
        await provider.complete(request)  # straight to the server: no fitting on our side
    assert caught.value.context_length == 512 and caught.value.prompt_tokens > 512
    assert caught.value.status_code == 400 and "exceeds the available context size" in str(caught.value)
    await provider.aclose()


async def test_the_gateway_fits_a_long_article_to_the_real_window(llama_server):
    article = "The actor used wmic to spawn processes on remote hosts. " * 100
    async with gateway_for(llama_server.url) as gateway:
        result = await gateway.chat(
            [
                {"role": "system", "content": "Name the tool in one word."},
                {"role": "user", "content": article, "truncatable": True},
            ],
            max_tokens=8,
        )
    assert result.fit.truncated_chars > 0 and result.usage.prompt_tokens <= 512


async def test_concurrency_is_capped_at_the_slot_count(llama_server):
    async with gateway_for(llama_server.url, max_in_flight=4) as gateway:
        provider = gateway.provider("llamacpp")
        results = await asyncio.gather(*(gateway.chat(f"Say {n}.", max_tokens=3) for n in range(4)))
    assert len(results) == 4 and all(r.text for r in results)
    assert provider.peak_in_flight == 2  # four callers, two slots: never more than two at the server


# -- llama-cpp-python's server --------------------------------------------------------------------
async def test_llama_cpp_python_server(llama_cpp_python_server):
    provider = LlamaCppServerProvider(llama_cpp_python_server)
    assert await provider.detect() == "llama-cpp-python"
    assert (await provider.health()).ok
    assert await provider.count_tokens(SAMPLE) == 7  # via /extras/tokenize
    schema_request = ChatRequest(messages=[Message(role="user", content="x")], response_schema={"type": "object"})
    assert provider.response_format(schema_request) == {"type": "json_object", "schema": {"type": "object"}}
    await provider.aclose()

    async with gateway_for(llama_cpp_python_server, context_lengths={"*": 512}) as gateway:
        result = await gateway.chat(
            "The attacker ran mimikatz to dump credentials. Classify the tactic and name the tool.",
            output_type=Tactic,
            max_tokens=40,
        )
        assert isinstance(result.parsed, Tactic)
        deltas = [d async for d in gateway.stream("Say hello.", max_tokens=8)]
        assert deltas[-1].done and deltas[-1].result.text


async def test_llama_cpp_python_server_overflow(llama_cpp_python_server):
    provider = LlamaCppServerProvider(llama_cpp_python_server)
    request = ChatRequest(messages=[Message(role="user", content="wmic process call create " * 300)], max_tokens=8)
    with pytest.raises(ContextOverflow) as caught:
        await provider.complete(request)
    assert caught.value.context_length == 512 and caught.value.prompt_tokens > 512
    await provider.aclose()


async def test_embeddings_from_a_llama_server_started_with_embeddings(qwen_path):
    server = EmbeddedLlamaServer(qwen_path, n_ctx=512, slots=1, threads=2, alias="qwen-embed", embeddings=True)
    try:
        settings = load_settings(
            {"llamacpp_server_url": server.url, "embedding_provider": "llamacpp", "embedded": False}, env_file=None
        )
        async with Gateway(settings) as gateway:
            result = await gateway.embed(["certutil downloads a file", "an unrelated sentence about lunch"])
    finally:
        server.stop()
    assert result.provider == "llamacpp" and result.dimensions == 896 and len(result.vectors) == 2
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-3 for v in result.vectors)  # llama-server normalises


async def test_structured_requests_carry_dry_sampling_and_the_server_takes_it(llama_server):
    # Under a grammar a small model copies the item it just wrote until maxItems; DRY makes the copy lose.
    provider = LlamaCppServerProvider(llama_server.url)
    await provider.detect()
    schema = Tactic.model_json_schema()
    structured = ChatRequest(messages=[Message(role="user", content="x")], response_schema=schema, max_tokens=8)
    plain = ChatRequest(messages=[Message(role="user", content="x")], max_tokens=8)
    body = provider.build_body(structured, stream=False)
    assert body["dry_multiplier"] > 0 and body["dry_sequence_breakers"] == ["<|im_end|>"]
    assert "dry_multiplier" not in provider.build_body(plain, stream=False)  # free text keeps its repeats
    await provider.aclose()
    # test_json_schema_output runs through this body on the real llama-server: the parameters are accepted


async def _pipeline_schemas() -> list[dict]:
    from ctistudio.pipeline.extract import extract_observables
    from ctistudio.pipeline.rank import rank_request
    from ctistudio.pipeline.selection import selection_schema
    from ctistudio.pipeline.sigma_gen import RuleContext, group_observables, group_request
    from ctistudio.resources import demo_article

    article = demo_article()
    observables = (await extract_observables(None, article)).observables
    context = RuleContext("t", "T", "https://example.org", "2026-12-07", article=article)
    schemas = [rank_request(article)[1]]
    schemas += [selection_schema(kind, n) for kind in ("cmdline", "lineage", "network") for n in (0, 12)]
    for group in group_observables(observables):
        request = group_request(group, context, [])
        if request is not None:
            schemas.append(request.schema)
    return schemas


async def test_the_server_takes_the_compact_grammar_of_every_pipeline_schema(llama_server):
    import httpx
    import jsonschema

    from ctistudio.llm.grammar import compact_grammar

    provider = LlamaCppServerProvider(llama_server.url)
    await provider.detect()
    schemas = await _pipeline_schemas()
    assert len(schemas) >= 10
    async with httpx.AsyncClient(timeout=120) as client:
        for schema in schemas:
            request = ChatRequest(
                messages=[Message(role="user", content="Answer in JSON.")], response_schema=schema, max_tokens=24
            )
            body = provider.build_body(request, stream=False)
            assert body["grammar"] == compact_grammar(schema) and "response_format" not in body
            response = await client.post(f"{llama_server.url}/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text[:300]  # a grammar llama.cpp cannot parse is a 400
            text = response.json()["choices"][0]["message"]["content"]
            assert text.startswith("{") and "\n" not in text and "  " not in text
        # and a whole answer under the grammar fits its schema
        schema = schemas[1]  # cmdline selection without candidates: {"new": [...]}
        request = ChatRequest(
            messages=[Message(role="user", content='Answer {"new": []} in JSON.')],
            response_schema=schema,
            max_tokens=64,
        )
        response = await client.post(
            f"{llama_server.url}/v1/chat/completions", json=provider.build_body(request, stream=False)
        )
        jsonschema.validate(json.loads(response.json()["choices"][0]["message"]["content"]), schema)
    await provider.aclose()


async def test_a_shared_prefix_is_evaluated_once_and_copied_into_the_other_slot(llama_server):
    # a slot's cache serves only that slot: without the copy, slot 1 would evaluate the whole article again
    article = "ARTICLE:\n" + " ".join(
        f"Step {n} ({uuid.uuid4().hex[:8]}): the loader ran rundll32 with lanternsvc.dll,DllRegister."
        for n in range(12)
    )
    prefix = [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": article}]
    async with gateway_for(llama_server.url) as gateway:
        assert await gateway.share_prefix(prefix, task="extract") is True
        article_tokens = await gateway.count_tokens(article)
    body = {
        "messages": [*prefix, {"role": "user", "content": "Which DLL?"}],
        "max_tokens": 2,
        "id_slot": 1,  # the slot that did NOT evaluate the prefix
    }
    async with httpx.AsyncClient(timeout=120) as client:
        answer = (await client.post(llama_server.url + "/v1/chat/completions", json=body)).json()
    assert answer["timings"]["cache_n"] >= article_tokens
    assert answer["timings"]["prompt_n"] < 20  # only the question and the chat template's few tokens
    # the state went into the engine's own folder (llama-server appends the name to the path as given)
    assert [p.name for p in llama_server.slot_dir.iterdir()] == [SHARED_PREFIX_FILE]
