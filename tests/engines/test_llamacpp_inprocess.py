"""llama.cpp in this process (llama-cpp-python) with the packaged 0.5B model."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from ctistudio.config import load_settings
from ctistudio.llm import ContextOverflow, Gateway, ModelNotLoaded
from ctistudio.llm.providers.llamacpp import LlamaCppProvider
from ctistudio.llm.types import ChatRequest, Message

pytestmark = [pytest.mark.slow, pytest.mark.native]
pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the dev extra (and the llamacpp extra)")

N_CTX = 512


class Commands(BaseModel):
    commands: list[str]


@pytest.fixture
def gateway(qwen_path: Path):
    values = {"llamacpp_enabled": True, "llamacpp_model_path": str(qwen_path), "llamacpp_n_ctx": N_CTX}
    values |= {"llamacpp_threads": 2, "llm_provider": "llamacpp", "embedded": False}
    settings = load_settings(values, env_file=None)
    return Gateway(settings)


async def test_chat(gateway):
    async with gateway:
        result = await gateway.chat("Answer with one word: what is the capital of France?", max_tokens=8)
    assert "paris" in result.text.lower()
    assert result.provider == "llamacpp" and result.url.startswith("file://")
    assert result.usage.prompt_tokens and result.usage.completion_tokens
    assert result.timings.generation_tokens_per_s and result.timings.prompt_tokens_per_s  # llama.cpp's counters
    assert result.fit.context_length == N_CTX


async def test_streaming_keeps_the_event_loop_free(gateway, loop_ticker):
    async with gateway:
        with loop_ticker:
            deltas = [d async for d in gateway.stream("Count from 1 to 5, separated by spaces.", max_tokens=16)]
    final = deltas[-1].result
    assert len(deltas) > 3 and "".join(d.text for d in deltas).strip() == final.text and "3" in final.text
    assert final.timings.time_to_first_token is not None
    assert loop_ticker.ticks > 10  # generation ran in a worker thread


async def test_structured_output_uses_json_object_with_schema(gateway):
    async with gateway:
        result = await gateway.chat(
            'List the command lines in: the attacker ran `whoami /all` and then `net group "domain admins" /domain`.',
            output_type=Commands,
            max_tokens=60,
        )
    assert isinstance(result.parsed, Commands) and any("whoami" in c for c in result.parsed.commands)


async def test_overflow_is_classified(qwen_path):
    provider = LlamaCppProvider(qwen_path, n_ctx=N_CTX, threads=2)
    request = ChatRequest(messages=[Message(role="user", content="wmic process call create " * 200)], max_tokens=8)
    with pytest.raises(ContextOverflow) as caught:
        await provider.complete(request)  # no fitting on our side: llama-cpp-python's own error
    assert caught.value.context_length == N_CTX and caught.value.prompt_tokens > N_CTX
    assert "LLAMACPP_N_CTX" in caught.value.fix
    with pytest.raises(ContextOverflow):
        async for _ in provider.stream(request):
            pass


async def test_exact_counts_and_one_model_per_process(qwen_path):
    first = LlamaCppProvider(qwen_path, n_ctx=N_CTX, threads=2)
    second = LlamaCppProvider(qwen_path, n_ctx=N_CTX, threads=2)
    assert await first.count_tokens("Hello world, powershell -enc") == 7
    assert (await first.loaded()) is (await second.loaded())  # same settings: the same loaded model
    assert (await first.models())[0].loaded


async def test_missing_model_file(tmp_path):
    provider = LlamaCppProvider(tmp_path / "nope.gguf")
    assert not (await provider.health()).ok
    with pytest.raises(ModelNotLoaded, match="no model file"):
        await provider.complete(ChatRequest(messages=[Message(role="user", content="x")]))


def test_catalog_names_resolve_to_installed_paths(qwen_path):
    from ctistudio.llm.providers.local_builders import build_llamacpp

    settings = load_settings(
        {"llamacpp_model_path": "qwen2.5-coder-0.5b-instruct-q4", "models_dir": qwen_path.parent.parent},
        env_file=None,
    )
    provider = build_llamacpp(settings)
    assert isinstance(provider, LlamaCppProvider) and provider.model_path == qwen_path


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() != "x86_64" or shutil.which("objdump") is None,
    reason="checks the x86-64 Linux build ./studio makes",
)
@pytest.mark.skipif(bool(os.environ.get("CMAKE_ARGS")), reason="a build with the user's own CMAKE_ARGS")
def test_the_llama_cpp_build_runs_on_any_avx2_machine():
    # ./studio builds llama-cpp-python with GGML_NATIVE=OFF for the x86-64-v3 baseline: a wheel compiled for
    # the building CPU (-march=native) crashed on a machine with other extensions (AVX-512, AMX).
    import llama_cpp

    library = Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"
    code = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True).stdout
    assert "%ymm" in code  # AVX2 kernels are there
    assert "%zmm" not in code and "%tmm" not in code  # no AVX-512 or AMX instruction a CPU might lack
