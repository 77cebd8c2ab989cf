"""Providers that cannot be measured appear as unavailable with their reason; nothing is measured instead."""

from __future__ import annotations

import platform
import sys

import pytest

from ctistudio.bench import BenchError, BenchOptions, require_measurements, run_benchmark
from ctistudio.testing.cloud_doubles import OpenAIDouble
from ctistudio.testing.http_double import Fault
from ctistudio.testing.lmstudio_double import LMStudioDouble

from .conftest import answer_for

APPLE_SILICON = sys.platform == "darwin" and platform.machine() == "arm64"


@pytest.mark.skipif(APPLE_SILICON, reason="MLX is available on Apple Silicon")
async def test_each_unavailable_provider_says_why(bench_settings):
    settings = bench_settings(lmstudio_api_url="http://127.0.0.1:9/v1")  # nobody listens on port 9
    options = BenchOptions(providers=["lmstudio", "mlx", "openai"], tasks=["rank"], quick=True)
    report = await run_benchmark(options, settings=settings)

    assert report.results == []
    reasons = {u.provider: u for u in report.unavailable}
    assert set(reasons) == {"lmstudio", "mlx", "openai"}
    assert "127.0.0.1:9" in reasons["lmstudio"].reason
    assert "Apple Silicon" in reasons["mlx"].reason
    assert reasons["openai"].reason == "OPENAI_API_KEY is not set"
    assert reasons["openai"].fix == "Set OPENAI_API_KEY."
    with pytest.raises(BenchError, match="no provider could be measured"):
        require_measurements(report)


async def test_a_cloud_provider_is_never_measured_in_place_of_a_local_one(start_double, bench_settings):
    cloud = start_double(OpenAIDouble)
    settings = bench_settings(
        lmstudio_api_url="http://127.0.0.1:9/v1", openai_api_key="sk-test", openai_base_url=cloud.url
    )
    report = await run_benchmark(BenchOptions(tasks=["rank"], quick=True), settings=settings)

    assert report.results == []
    reasons = {u.provider: u.reason for u in report.unavailable}
    assert "connection refused" in reasons["lmstudio"]
    assert reasons["openai"].startswith("cloud provider: measured only when named")
    assert reasons["embedded"] == "not enabled"
    assert cloud.requests_to("/v1/chat/completions") == []


async def test_a_model_the_server_does_not_have_is_unavailable(start_double, bench_settings):
    lms = start_double(LMStudioDouble)
    lms.responder = answer_for
    options = BenchOptions(
        providers=["lmstudio"], models=["lmstudio=nope/missing-model", "qwen/qwen3-4b-2507"], tasks=["chat"], quick=True
    )
    report = await run_benchmark(options, settings=bench_settings(lms))

    assert [(r.model, r.status) for r in report.results] == [("qwen/qwen3-4b-2507", "measured")]
    (missing,) = report.unavailable
    assert missing.model == "nope/missing-model"
    assert "not on the server" in missing.reason and "qwen/qwen3-4b-2507" in missing.reason
    assert {r.body["model"] for r in lms.requests_to("/v1/chat/completions")} == {"qwen/qwen3-4b-2507"}


async def test_a_provider_whose_every_call_fails_is_reported_failed(start_double, bench_settings):
    lms = start_double(LMStudioDouble)
    lms.fail(Fault(status=400, body={"error": "Invalid request: always refused"}, times=100))
    report = await run_benchmark(
        BenchOptions(providers=["lmstudio"], tasks=["rank"], quick=True), settings=bench_settings(lms)
    )

    (target,) = report.results
    assert target.status == "failed" and "always refused" in target.error
    assert target.tasks[0].success_rate == 0.0 and target.tasks[0].latency is None
    with pytest.raises(BenchError, match="always refused"):
        require_measurements(report)
