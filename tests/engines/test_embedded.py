"""The embedded engine: llama-server inside this process with the packaged model; no server, no key.

Also the ``auto`` chain's last resort: with nothing configured (LM Studio not running), answers come
from the embedded engine; embeddings from the embedded MiniLM.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway, ModelNotLoaded, NoProviderAvailable
from ctistudio.llm.providers import auto_chain, embedding_provider_name
from ctistudio.llm.providers.embedded import EmbeddedLlamaServer, EmbeddedProvider
from ctistudio.modelhub import DEFAULT_CHAT_MODEL, ModelInstaller

pytestmark = [pytest.mark.slow, pytest.mark.native]
N_CTX = 2048


def settings_with(models_dir: Path, **fields):
    return load_settings({"models_dir": models_dir, "embedded_n_ctx": N_CTX, **fields}, env_file=None)


async def test_a_user_who_configured_nothing_gets_answers(qwen_path):
    settings = settings_with(qwen_path.parent.parent)  # defaults: LM Studio enabled but not running (port 9)
    assert auto_chain(settings)[-1] == "embedded"
    async with Gateway(settings) as gateway:
        result = await gateway.chat("Answer with one word: what is the capital of France?", max_tokens=8)
        provider = gateway.provider("embedded")
    assert result.provider == "embedded" and result.model == DEFAULT_CHAT_MODEL and "paris" in result.text.lower()
    assert result.fit.context_length == N_CTX  # each slot has a window of its own
    assert isinstance(provider, EmbeddedProvider) and provider.engine is not None
    assert provider.engine.url.startswith("http://127.0.0.1:")


async def test_the_engine_is_started_once_per_process(qwen_path):
    settings = settings_with(qwen_path.parent.parent, llm_provider="embedded")
    async with Gateway(settings) as first:
        await first.chat("Say hi.", max_tokens=2)
        engine = first.provider("embedded").engine
    async with Gateway(settings) as second:
        await second.chat("Say hi.", max_tokens=2)
        assert second.provider("embedded").engine is engine
        assert await second.count_tokens("Hello world, powershell -enc", provider="embedded") == 7


async def test_streams_and_follows_a_schema(qwen_path):
    from pydantic import BaseModel

    class Tool(BaseModel):
        tool: str

    settings = settings_with(qwen_path.parent.parent, llm_provider="embedded")
    async with Gateway(settings) as gateway:
        deltas = [d async for d in gateway.stream("Count from 1 to 5, separated by spaces.", max_tokens=16)]
        parsed = (await gateway.chat("Which tool dumps LSASS credentials: mimikatz?", output_type=Tool)).parsed
    assert deltas[-1].done and "3" in deltas[-1].result.text and len(deltas) > 3
    assert isinstance(parsed, Tool) and parsed.tool


async def test_health_is_cheap_and_says_what_to_do(tmp_path):
    provider = EmbeddedProvider(ModelInstaller(tmp_path))
    health = await provider.health()
    assert not health.ok and f"ctistudio models install {DEFAULT_CHAT_MODEL}" in health.detail
    with pytest.raises(ModelNotLoaded) as caught:
        await provider.count_tokens("x")
    assert "not installed" in str(caught.value) and "ctistudio models install" in caught.value.fix


async def test_without_the_model_the_chain_says_how_to_fix_it(tmp_path):
    async with Gateway(settings_with(tmp_path)) as gateway:
        with pytest.raises(NoProviderAvailable) as caught:
            await gateway.chat("hi")
    message = str(caught.value)
    assert "lmstudio" in message and "embedded" in message and "ctistudio models install" in message


def test_embedded_off_leaves_it_out(tmp_path):
    settings = settings_with(tmp_path, embedded=False)
    assert "embedded" not in auto_chain(settings)
    assert embedding_provider_name(settings) == "lmstudio"


async def test_default_embeddings_are_the_embedded_minilm(qwen_path):
    settings = settings_with(qwen_path.parent.parent)
    assert embedding_provider_name(settings) == "embedded"
    async with Gateway(settings) as gateway:
        result = await gateway.embed(["certutil -urlcache -f http://x/a.exe", "an unrelated sentence"])
    assert (result.provider, result.model, result.dimensions) == ("embedded", "all-minilm-l6-v2-int8", 384)
    assert len(result.vectors) == 2


async def test_each_slot_has_the_whole_window(qwen_path):
    """Two concurrent prompts of ~1,100 tokens each fit a 2,048-token window each; a KV cache of 2,048 shared
    by the slots failed both with "Context size has been exceeded"."""
    import asyncio

    settings = settings_with(qwen_path.parent.parent, llm_provider="embedded")
    notes = [f"Note {i}: the host ran rundll32.exe comsvcs.dll MiniDump on lsass at step {i}." for i in range(60)]
    async with Gateway(settings) as gateway:
        prompts = [f"Reader {who}. " + " ".join(notes) + " How many notes? One number." for who in ("A", "B")]
        sizes = [await gateway.count_tokens(p, provider="embedded") for p in prompts]
        assert all(1000 < size < N_CTX - 100 for size in sizes) and sum(sizes) > N_CTX
        answers = await asyncio.gather(*(gateway.chat(p, max_tokens=8) for p in prompts))
    assert all(answer.provider == "embedded" and answer.text for answer in answers)


def test_engine_reports_its_settings(qwen_path):
    engine = EmbeddedLlamaServer.shared(qwen_path, n_ctx=N_CTX, slots=2, threads=2, alias=DEFAULT_CHAT_MODEL)
    assert engine is EmbeddedLlamaServer.shared(qwen_path, n_ctx=N_CTX, slots=2, threads=2, alias="other")
    assert (engine.window, engine.n_ctx, engine.slots) == (N_CTX, 2 * N_CTX, 2) and engine.load_seconds > 0


async def test_connection_report_says_which_setting_widens_the_window(qwen_path):
    from ctistudio.llm.diagnostics import connection_report

    async with Gateway(settings_with(qwen_path.parent.parent, llm_provider="embedded")) as gateway:
        report = await connection_report(gateway.provider("embedded"))
    context_checks = [c for c in report.checks if c.name.endswith(": context")]
    assert context_checks and not report.ok  # 2,048 tokens is below what the pipeline's tasks need
    assert all(not c.ok and "CTISTUDIO_EMBEDDED_N_CTX=" in c.fix for c in context_checks)
    assert not any("lms load" in (c.fix or "") for c in report.checks)
