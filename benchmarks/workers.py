"""Pipeline throughput on 1, 2 and 4 Celery workers (concurrency 1 each) over a real Redis.

16 articles (the demo report, each with its own closing line) run through the whole pipeline (forced past
the rank gate) on the LM Studio double answering every completion after 300 ms. For each worker count: a
fresh store (a database on a throw-away PostgreSQL server, the team set-up; ``--store sqlite`` for one SQLite
file, where concurrent writers wait on its lock), the workers started and ready, then the wall time from
enqueueing the 16 runs until all have finished. Printed: seconds, runs per minute, and the speed-up over
one worker (the baseline, measured in the same run). Goals: ≥ 1.8× with 2 workers, ≥ 3.4× with 4.

    .venv/bin/python benchmarks/workers.py                    # needs redis-server (apt-get install redis-server)
    .venv/bin/python benchmarks/workers.py --articles 32 --latency 0.5 --workers 1 2 4 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.postgres_server import PostgresServer
from ctistudio.testing.redis_server import RedisServer
from ctistudio.testing.worker_fleet import WorkerFleet, add_demo_variants, fleet_env

GOALS = {2: 1.8, 4: 3.4}


async def _run_all(settings, store: Store, articles: list[int]) -> float:
    async with Gateway(settings) as gateway:
        service = PipelineService(settings, store, gateway)
        started = time.perf_counter()
        runs = [await service.start_run(article, force=True) for article in articles]
        statuses = [await service.wait(run) for run in runs]
        seconds = time.perf_counter() - started
    if set(statuses) != {"succeeded"}:
        raise SystemExit(f"runs did not all succeed: {statuses}")
    return seconds


def measure(
    workers: int, articles: int, redis: RedisServer, lms: LMStudioDouble, root: Path, postgres: PostgresServer | None
) -> float:
    data = root / f"workers-{workers}"
    redis.flush()
    url = postgres.create_database(f"bench_{workers}") if postgres else f"sqlite:///{data / 'bench.db'}"
    env = fleet_env(redis.url(), url, data, lms, CTISTUDIO_LOG_LEVEL="WARNING")
    env["CTISTUDIO_RUN_LEASE_SECONDS"] = "30"  # no takeovers in a benchmark
    env["CTISTUDIO_BROKER_VISIBILITY_TIMEOUT"] = "600"
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        settings = load_settings(env_file=None)
        with Store(settings) as store:
            ids = add_demo_variants(store, articles)
            with WorkerFleet(env, count=workers):
                return asyncio.run(_run_all(settings, store, ids))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per completion on the double")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    counts = sorted(set(args.workers) | {1})
    print(
        f"{args.articles} articles, {args.latency * 1000:.0f} ms per completion, workers at concurrency 1, "
        f"{args.store} store"
    )
    results: dict[int, float] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ctistudio-bench-workers-"))
        redis = stack.enter_context(RedisServer())
        lms = stack.enter_context(LMStudioDouble(latency=args.latency))
        postgres = stack.enter_context(PostgresServer()) if args.store == "postgresql" else None
        for count in counts:
            results[count] = measure(count, args.articles, redis, lms, Path(tmp), postgres)
            speedup = results[1] / results[count]
            goal = GOALS.get(count)
            verdict = "" if goal is None else f"  (goal ≥ {goal}×: {'met' if speedup >= goal else 'NOT met'})"
            print(
                f"  {count} worker{'s' if count > 1 else ' '}: {results[count]:6.1f} s, "
                f"{args.articles / results[count] * 60:5.1f} runs/min, {speedup:.2f}× {verdict}"
            )
    met = all(results[1] / results[c] >= g for c, g in GOALS.items() if c in results)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
