"""The benchmark on the real packaged model (Qwen2.5-Coder-0.5B in the embedded llama.cpp engine)."""

from __future__ import annotations

import pytest

from ctistudio.bench import BenchOptions, run_benchmark
from ctistudio.modelhub import DEFAULT_CHAT_MODEL
from ctistudio.testing.installed_models import require_installed, shared_installer

pytestmark = [pytest.mark.slow, pytest.mark.native]


async def test_quick_run_on_the_embedded_model_measures_load_speed_validity_and_memory(bench_settings):
    model_file = require_installed(DEFAULT_CHAT_MODEL)
    settings = bench_settings(
        embedded=True, models_dir=shared_installer().models_dir, embedded_n_ctx=4096, lmstudio_enabled=False
    )
    options = BenchOptions(providers=["embedded"], tasks=["rank"], repeat=1)
    report = await run_benchmark(options, settings=settings)

    assert report.unavailable == []
    (target,) = report.results
    assert (target.provider, target.model, target.status) == ("embedded", DEFAULT_CHAT_MODEL, "measured")
    assert target.in_process and target.url.startswith("http://127.0.0.1:")
    assert target.model_file == str(model_file) and target.model_size_bytes == model_file.stat().st_size
    # the first call loads the model: it takes at least the engine's own load time
    assert target.engine_load_s is not None and target.cold_start_s >= target.engine_load_s
    # the model is mapped into this process: its peak grew by a good part of the file
    assert target.peak_rss_bytes - target.rss_before_bytes > 0.5 * target.model_size_bytes
    (rank,) = target.tasks
    assert rank.success_rate == 1.0
    assert rank.validity_rate == 1.0  # json_schema-constrained decoding of the rank schema
    assert 1 <= rank.quality["score"] <= 10
    first, warm = rank.samples
    assert first.prompt_tokens == warm.prompt_tokens > 1000  # exact counts from the engine's tokenizer
    # at most the rubric (system prompt) came from the prefix cache: the article after the sample marker
    # is new text for the server on every call, as a new article is in the workflow
    assert warm.cached_tokens is not None and warm.cached_tokens < warm.prompt_tokens / 2
    # llama-server's own rates
    assert warm.prompt_tps > 0 and warm.generation_tps > 0
    assert 0 < warm.ttft_s < warm.latency_s
