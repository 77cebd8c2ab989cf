"""Measuring calls: one streamed call, N calls at once, and the gateway against a bare HTTP client.

Every call goes through :class:`~ctistudio.llm.Gateway` with the target's provider named explicitly, so
the router never falls back to another provider: a call that cannot be answered by the provider asked
for is a failed sample, never a figure of some other provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ctistudio.bench.errors import RawCallFailed
from ctistudio.bench.models import ConcurrencyResult, RawComparison, Sample
from ctistudio.bench.stats import percentile, rate
from ctistudio.bench.tasks import BenchArticle, BenchTask
from ctistudio.errors import CtiStudioError
from ctistudio.llm import ChatResult, Gateway
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider


@dataclass(frozen=True)
class CallSpec:
    """Who is asked: the provider by name and the model passed with each request (``None``: its default)."""

    provider: str
    request_model: str | None


def _options(task: BenchTask, article: BenchArticle, max_tokens: int) -> dict[str, Any]:
    """``max_tokens`` and, for a structured task, the schema the workflow asks for on ``article``."""
    options: dict[str, Any] = {"max_tokens": max_tokens}
    named = task.response_schema(article)
    if named is not None:
        options["schema_name"], options["response_schema"] = named
    return options


async def measure_call(
    gateway: Gateway, spec: CallSpec, task: BenchTask, article: BenchArticle, marker: str, max_tokens: int
) -> tuple[Sample, ChatResult | None]:
    """Stream one task request and judge the answer. Failures become a failed sample, not an exception."""
    messages = task.build(article, marker)
    started = time.perf_counter()
    first: float | None = None
    result: ChatResult | None = None
    try:
        stream = gateway.stream(
            messages,
            task=task.name,
            provider=spec.provider,
            model=spec.request_model,
            **_options(task, article, max_tokens),
        )
        async for delta in stream:
            if delta.text and first is None:
                first = time.perf_counter() - started
            if delta.done:
                result = delta.result
    except CtiStudioError as error:
        return Sample(ok=False, error=error.message, latency_s=time.perf_counter() - started), None
    latency = time.perf_counter() - started
    if result is None:
        return Sample(ok=False, error="the stream ended without a result", latency_s=latency), None
    if result.provider != spec.provider:
        # Cannot happen with an explicit provider; checked so a figure is never another provider's.
        wrong = f"answered by {result.provider}, not {spec.provider}: sample discarded"
        return Sample(ok=False, error=wrong, latency_s=latency), None
    return sample_from(result, task, article, latency, first), result


def sample_from(
    result: ChatResult, task: BenchTask, article: BenchArticle, latency: float, first: float | None
) -> Sample:
    judgement = task.judge(result.text, article)
    timings, usage = result.timings, result.usage
    return Sample(
        ok=True,
        valid=judgement.valid,
        latency_s=latency,
        ttft_s=first if first is not None else timings.time_to_first_token,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        prompt_tps=timings.prompt_tokens_per_s,
        generation_tps=timings.generation_tokens_per_s,
        answered_by=f"{result.provider}/{result.model}",
        quality=judgement.quality,
        detail=None if judgement.valid else judgement.detail,
    )


async def measure_concurrency(
    gateway: Gateway,
    spec: CallSpec,
    task: BenchTask,
    article: BenchArticle,
    *,
    requests: int,
    max_tokens: int,
    marker: str,
    single_tps: float | None,
) -> tuple[ConcurrencyResult, list[Sample]]:
    """``requests`` calls started together; aggregate generation tokens/s over the wall time."""
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(measure_call(gateway, spec, task, article, f"{marker}.{n}", max_tokens) for n in range(requests))
    )
    wall = time.perf_counter() - started
    samples = [sample for sample, _ in outcomes]
    tokens = sum(s.completion_tokens or 0 for s in samples if s.ok)
    aggregate = rate(tokens, wall) if any(s.ok for s in samples) else None
    peak = gateway.router(spec.provider).endpoint_state(spec.provider).peak_in_flight
    return (
        ConcurrencyResult(
            requests=requests,
            succeeded=sum(s.ok for s in samples),
            wall_s=wall,
            completion_tokens=tokens,
            aggregate_generation_tps=aggregate,
            single_generation_tps=single_tps,
            speedup=aggregate / single_tps if aggregate and single_tps else None,
            peak_in_flight=peak,
        ),
        samples,
    )


async def compare_raw(
    gateway: Gateway,
    spec: CallSpec,
    task: BenchTask,
    article: BenchArticle,
    *,
    pairs: int,
    max_tokens: int,
    marker: str,
) -> RawComparison:
    """The same requests through ``gateway.chat`` and through a bare ``httpx`` POST, interleaved.

    Both sides send the request the gateway builds (same model, schema, sampling settings) to the same
    URL; each call has its own sample marker so neither side profits from the other's prompt cache. A
    pair where the gateway needed a retry or a structured-output repair (two calls) is left out.
    """
    provider = gateway.provider(spec.provider)
    if not isinstance(provider, OpenAICompatibleProvider):
        return RawComparison(
            pairs=0,
            gateway_p50_s=None,
            raw_p50_s=None,
            overhead_ratio=None,
            unavailable=f"{spec.provider} is not an OpenAI-compatible HTTP server (no raw client to compare with)",
        )
    gateway_times: list[float] = []
    raw_times: list[float] = []
    headers = {"Authorization": f"Bearer {provider.transport.api_key}"} if provider.transport.api_key else {}
    async with httpx.AsyncClient(timeout=provider.transport.timeout, trust_env=False, headers=headers) as client:
        for n in range(pairs):
            gateway_first = n % 2 == 0
            for side in ("gateway", "raw") if gateway_first else ("raw", "gateway"):
                messages = task.build(article, f"{marker}.{side}.{n}")
                try:
                    if side == "gateway":
                        options = _options(task, article, max_tokens)
                        seconds = await _timed_gateway_call(gateway, spec, task, messages, options)
                        if seconds is not None:
                            gateway_times.append(seconds)
                    else:
                        raw_times.append(
                            await _timed_raw_call(
                                client, gateway, provider, spec, task, messages, _options(task, article, max_tokens)
                            )
                        )
                except CtiStudioError as error:
                    return RawComparison(
                        pairs=n,
                        gateway_p50_s=None,
                        raw_p50_s=None,
                        overhead_ratio=None,
                        unavailable=f"the {side} call failed: {error.message}",
                    )
    gateway_p50 = percentile(gateway_times, 50) if gateway_times else None
    raw_p50 = percentile(raw_times, 50) if raw_times else None
    return RawComparison(
        pairs=min(len(gateway_times), len(raw_times)),
        gateway_p50_s=gateway_p50,
        raw_p50_s=raw_p50,
        overhead_ratio=gateway_p50 / raw_p50 if gateway_p50 and raw_p50 else None,
    )


async def _timed_gateway_call(
    gateway: Gateway, spec: CallSpec, task: BenchTask, messages: list[dict[str, Any]], options: dict[str, Any]
) -> float | None:
    started = time.perf_counter()
    result = await gateway.chat(messages, task=task.name, provider=spec.provider, model=spec.request_model, **options)
    seconds = time.perf_counter() - started
    return seconds if result.attempts == 1 else None


async def _timed_raw_call(
    client: httpx.AsyncClient,
    gateway: Gateway,
    provider: OpenAICompatibleProvider,
    spec: CallSpec,
    task: BenchTask,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
) -> float:
    request = gateway.build_request(messages, task=task.name, model=spec.request_model, **options)
    request = provider.with_defaults(request)  # the sampling the gateway's call sends too
    request = request.model_copy(update={"model": request.model or provider.model_for(task.name)})
    body = provider.build_body(request, stream=False)
    url = provider.transport.url_for(provider.chat_path())
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body)
        response.raise_for_status()
        response.json()["choices"][0]["message"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RawCallFailed(f"raw POST {url}: {exc}", fix="Check the server's log.") from exc
    return time.perf_counter() - started
