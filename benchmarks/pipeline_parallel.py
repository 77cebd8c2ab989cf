"""Pipeline concurrency: 8 articles through the whole pipeline, concurrency 4 against concurrency 1.

An LM Studio test double (a real HTTP server on 127.0.0.1) answers every chat request after a fixed
latency and runs at most 4 predictions at once ("Max Concurrent Predictions" = 4). Each article costs
1 rank + 7 extraction sub-agents + 1 Sigma generation call; the rule is validated with pySigma.

- concurrency 1: one run at a time and one request in flight (``CTISTUDIO_MAX_IN_FLIGHT=1``);
- concurrency 4: four runs at a time, sub-agents fanned out, four requests in flight.

Both on a fresh SQLite store, in the same process, one after the other. Prints wall times and the ratio.

    .venv/bin/python benchmarks/pipeline_parallel.py                 # 8 articles, 0.25 s per request
    .venv/bin/python benchmarks/pipeline_parallel.py --latency 0.5

Goal: ≥ 3.5× faster with concurrency 4.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import tempfile
import time
from pathlib import Path

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.service import PipelineService
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article
from ctistudio.testing.lmstudio_double import ChatCall, LMStudioDouble

GOAL = 3.5
ARTICLES = 8
RULE = """title: Discovery Burst From Rundll32
description: Detects whoami run by cmd.exe, as the loader's discovery burst does.
tags:
    - attack.discovery
    - attack.t1033
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        ParentImage|endswith: '\\rundll32.exe'
        CommandLine|contains: 'whoami /all'
    condition: selection
falsepositives:
    - Unknown
level: medium
"""
COMMAND = {
    "items": [
        {
            "value": "cmd.exe /c whoami /all",
            "source_evidence": "cmd.exe /c whoami /all",
            "justification": "discovery",
            "confidence": "high",
        }
    ]
}


def analyst(call: ChatCall) -> str:
    """Fixed, valid answers: the benchmark measures scheduling, not the model."""
    if "SIGMA HUNTABILITY" in call.system:
        return json.dumps({"score": 8, "band": "high", "reasons": ["command lines"], "evidence": []})
    if "writing Sigma rules" in call.system:
        return RULE
    if any(str(m.get("content", "")).startswith("Task: COMMAND LINES") for m in call.messages):
        return json.dumps(COMMAND)
    return json.dumps({"items": []})


def add_articles(store: Store, count: int) -> list[int]:
    ids = []
    with store.session() as session:
        for number in range(count):
            text = demo_article() + f"\n\nCase {number}: observed at customer {number}.\n"
            digest = hashlib.sha256(text.encode()).hexdigest()
            article = add_article(
                session,
                NewArticle(title=f"Paper Lantern case {number}", content=text, content_hash=digest, simhash=number),
            )
            ids.append(article.id)
    return ids


async def run_batch(double: LMStudioDouble, folder: Path, concurrency: int, articles: int) -> tuple[float, int]:
    """Wall seconds to finish ``articles`` runs at ``concurrency``; and the double's peak in flight."""
    settings = load_settings(
        {
            "llm_provider": "lmstudio",
            "lmstudio_api_url": double.url,
            "max_in_flight": concurrency,
            "data_dir": str(folder),
            "embedded": False,
        },
        env_file=None,
    )
    store = Store(url=f"sqlite:///{folder / 'bench.db'}")
    ids = add_articles(store, articles)
    gateway = Gateway(settings)
    service = PipelineService(settings, store, gateway, concurrency=concurrency)
    double.clear()
    started = time.perf_counter()
    run_ids = [service.create_run(article_id) for article_id in ids]
    for run_id in run_ids:
        await service.runner.submit(run_id)
    statuses = [await service.wait(run_id) for run_id in run_ids]
    elapsed = time.perf_counter() - started
    await gateway.aclose()
    store.dispose()
    if set(statuses) != {"succeeded"}:
        raise SystemExit(f"runs did not all succeed: {statuses}")
    return elapsed, double.peak_in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=ARTICLES)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per request (fixed)")
    args = parser.parse_args()
    with (
        LMStudioDouble(latency=args.latency, max_concurrent_predictions=4) as double,
        tempfile.TemporaryDirectory() as tmp,
    ):
        double.responder = analyst
        serial, peak1 = asyncio.run(run_batch(double, Path(tmp, "c1"), 1, args.articles))
        calls = len(double.requests_to("/v1/chat/completions"))
        parallel, peak4 = asyncio.run(run_batch(double, Path(tmp, "c4"), 4, args.articles))
    ratio = serial / parallel
    print(f"machine: {platform.machine()}, {platform.python_version()}, double latency {args.latency:.2f} s/request")
    print(f"{args.articles} articles, {calls} chat requests per batch (rank + 7 sub-agents + sigma per article)")
    print(f"concurrency 1: {serial:7.2f} s  (peak in flight {peak1})")
    print(f"concurrency 4: {parallel:7.2f} s  (peak in flight {peak4})")
    print(f"speed-up: {ratio:.2f}x  (goal ≥ {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    print(f"lower bound at 4 slots: {calls * args.latency / 4:.2f} s; serial lower bound {calls * args.latency:.2f} s")


if __name__ == "__main__":
    main()
