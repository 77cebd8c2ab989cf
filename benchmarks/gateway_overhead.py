"""What the gateway costs on top of a bare OpenAI client, per call.

200 short completions against the same local OpenAI-compatible server (the LM Studio double on 127.0.0.1),
once through ``Gateway.chat`` (router, context fitting, determinism settings, result type) and once through
the raw ``openai`` SDK (``max_retries=0``), interleaved — the order alternates every round — so that both
see the same machine load. Prints the medians and their ratio; the goal is a ratio ≤ 1.05.

    .venv/bin/python benchmarks/gateway_overhead.py [--calls 200] [--provider lmstudio|openai_compat]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from openai import AsyncOpenAI

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.testing.lmstudio_double import LMStudioDouble

MODEL = "qwen/qwen3-4b-2507"
PROMPT = "Reply with one word: is rundll32 loading a DLL from %TEMP% suspicious?"
MAX_TOKENS = 16


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def measure(calls: int, provider: str) -> tuple[list[float], list[float]]:
    with LMStudioDouble(models={MODEL: 16384}, default_reply="Yes") as double:
        settings = load_settings(
            {
                "lmstudio_api_url": double.url,
                "lmstudio_model": MODEL,
                "openai_compat_url": double.url,
                "openai_compat_model": MODEL,
                "llm_provider": provider,
                "embedded": False,
            },
            env_file=None,
        )
        client = AsyncOpenAI(base_url=double.url, api_key="lm-studio", max_retries=0)
        async with Gateway(settings) as gateway:

            async def through_gateway() -> object:
                return await gateway.chat(PROMPT, max_tokens=MAX_TOKENS)

            async def through_sdk() -> object:
                return await client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": PROMPT}],
                    max_tokens=MAX_TOKENS,
                    temperature=0.0,
                    top_p=0.9,
                    seed=42,
                )

            for _ in range(10):  # warm-up: connections, the model-list cache, imports
                await through_gateway()
                await through_sdk()
            gateway_times: list[float] = []
            sdk_times: list[float] = []
            for round_ in range(calls):
                if round_ % 2:
                    sdk_times.append(await timed(through_sdk))
                    gateway_times.append(await timed(through_gateway))
                else:
                    gateway_times.append(await timed(through_gateway))
                    sdk_times.append(await timed(through_sdk))
        await client.close()
    return gateway_times, sdk_times


def describe(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p90 = ms[int(len(ms) * 0.9) - 1]
    return f"{name:<9} median {statistics.median(ms):6.3f} ms   p90 {p90:6.3f} ms   mean {statistics.fmean(ms):6.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--provider", default="lmstudio", choices=["lmstudio", "openai_compat"])
    args = parser.parse_args()
    gateway_times, sdk_times = asyncio.run(measure(args.calls, args.provider))
    ratio = statistics.median(gateway_times) / statistics.median(sdk_times)
    print(f"gateway overhead: {args.calls} short completions each, interleaved, LM Studio double on 127.0.0.1")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(describe(f"gateway[{args.provider}]", gateway_times))
    print(describe("openai SDK", sdk_times))
    print(f"ratio gateway/openai (medians): {ratio:.3f}  (goal ≤ 1.05)")


if __name__ == "__main__":
    main()
