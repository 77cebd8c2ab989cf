"""Prefix-cache reuse of the rank prompt: 10 articles ranked one after another on a real llama-server.

The rank prompt puts the fixed rubric first (system message) and the article last, so a server with a
prompt (KV) cache evaluates the rubric once and reuses it for every later article. This benchmark starts
llama.cpp's own llama-server in-process (the ``xllamacpp`` wheel) with the packaged model
(Qwen2.5-Coder-0.5B, ``ctistudio models install`` puts it in place), ranks 10 different articles through
the gateway (the request ``rank_article`` sends, exactly what the pipeline does) and reads the server's own figures:
``cache_n`` (prompt tokens taken from the cache) and ``prompt_n`` (tokens evaluated) per request.

    rubric tokens  = tokens of the chat-templated prompt up to the end of the rubric (server /tokenize)
    rubric reused  = min(cached tokens, rubric tokens) / rubric tokens        per article after the first

    .venv/bin/python benchmarks/prefix_cache.py                  # 10 articles, 2 slots, unified KV cache

Goal: ≥ 95 % of the rubric reused on every article after the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import time
from typing import NamedTuple

import httpx

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.llm.errors import BadOutput
from ctistudio.llm.structured import parse_structured
from ctistudio.modelhub import DEFAULT_CHAT_MODEL, ModelInstaller
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.rank import RANK_MAX_TOKENS, rank_request
from ctistudio.resources import demo_article

GOAL = 0.95


class Row(NamedTuple):
    prompt: int  # prompt tokens of the request
    cached: int  # of which the server took from its cache
    score: int | None  # None: the answer did not fit the rank schema
    seconds: float


def articles(count: int) -> list[tuple[str, str]]:
    """``count`` different short articles: the demo report's sections, each under its own title."""
    body = demo_article().split("\n---\n", 1)[-1]
    sections = [s.strip() for s in re.split(r"\n(?=## )", body) if s.strip().startswith("## ")]
    out = []
    for number in range(count):
        section = sections[number % len(sections)]
        heading = section.splitlines()[0].lstrip("# ")
        title = f"Paper Lantern, part {number + 1}: {heading}"
        out.append((title, f"{section}\n\n(Case {number + 1} of the PAPER LANTERN investigation.)"))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model_path: str, *, slots: int, n_ctx: int, threads: int) -> tuple[object, str]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.n_ctx = n_ctx
    params.n_parallel = slots
    params.kv_unified = True
    params.cache_prompt = True
    params.hostnames = ["127.0.0.1"]
    params.port = free_port()
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.endpoint_props = True
    params.verbosity = 1
    server = xllamacpp.Server(params)
    return server, f"http://127.0.0.1:{params.port}"


def rubric_tokens(url: str, title: str, article: str) -> int:
    """Tokens of the templated rank prompt up to the end of the rubric's message."""
    messages = [{"role": m["role"], "content": m["content"]} for m in rank_request(article, title)[0]]
    templated = httpx.post(f"{url}/apply-template", json={"messages": messages}, timeout=60).json()["prompt"]
    rubric = load_prompt("rank").body.rstrip()
    end = templated.index(rubric) + len(rubric)
    closing = templated.find("\n", end)  # the end-of-message marker that follows the rubric
    prefix = templated[: closing + 1 if closing >= 0 else end]
    tokens = httpx.post(f"{url}/tokenize", json={"content": prefix, "add_special": False}, timeout=60).json()
    return len(tokens["tokens"])


async def rank_all(url: str, items: list[tuple[str, str]], max_tokens: int) -> list[Row]:
    """Send the pipeline's own rank request (rubric, numbered article, rank schema) for each article.

    The request is the one ``rank_article`` sends, without the gateway's repair round: the figures are the
    server's for that one request, and an answer the model got wrong is counted, not fatal.
    """
    settings = load_settings(
        {"llm_provider": "llamacpp", "llamacpp_enabled": True, "llamacpp_server_url": url, "embedded": False},
        env_file=None,
    )
    rows = []
    async with Gateway(settings) as gateway:
        router = gateway.router("llamacpp")
        for title, text in items:
            messages, schema = rank_request(text, title)
            request = gateway.build_request(
                messages, task="rank", schema=schema, schema_name="rank", max_tokens=max_tokens
            )
            started = time.perf_counter()
            result = await router.complete(request)
            seconds = time.perf_counter() - started
            try:
                score: int | None = parse_structured(result.text, schema)["score"]
            except BadOutput:
                score = None
            usage = result.usage
            rows.append(Row(usage.prompt_tokens or 0, usage.cached_tokens or 0, score, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=RANK_MAX_TOKENS,
        help="answer budget (the pipeline's by default; the prompt, hence the cache figures, do not depend on it)",
    )
    args = parser.parse_args()
    settings = load_settings(env_file=None)
    model = ModelInstaller.from_settings(settings).path(DEFAULT_CHAT_MODEL)
    items = articles(args.articles)
    server, url = start_server(str(model), slots=args.slots, n_ctx=args.ctx, threads=args.threads)
    try:
        rubric = rubric_tokens(url, *items[0])
        rows = asyncio.run(rank_all(url, items, args.max_tokens))
    finally:
        del server
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"llama-server (xllamacpp), {model.name}, n_ctx {args.ctx}, {args.slots} slots, unified KV cache")
    print(f"rubric prefix: {rubric} tokens (chat template included)")
    print(f"{'#':>2}  {'prompt':>6}  {'cached':>6}  {'rubric reused':>13}  {'score':>5}  {'time':>6}")
    reuse = []
    for number, row in enumerate(rows, 1):
        share = min(row.cached, rubric) / rubric
        if number > 1:
            reuse.append(share)
        score = "bad" if row.score is None else row.score
        print(f"{number:>2}  {row.prompt:>6}  {row.cached:>6}  {share:>12.1%}  {score:>5}  {row.seconds:>5.1f}s")
    worst = min(reuse) if reuse else 0.0
    mean = sum(reuse) / len(reuse) if reuse else 0.0
    verdict = "met" if worst >= GOAL else "NOT met"
    print(f"rubric reused after the first article: worst {worst:.1%}, mean {mean:.1%} (goal ≥ {GOAL:.0%}: {verdict})")


if __name__ == "__main__":
    main()
