"""Load on the web app: concurrent clients on the article list, an article page and the providers API.

The server runs in its own process (``ctistudio serve`` on 127.0.0.1, a fresh SQLite database seeded with
synthetic articles, LM Studio pointed at a local test double so the providers API has a live server to
probe). Clients loop for a fixed time; the script prints requests/s, p50/p95 latency and errors per
endpoint, and the throughput ratio against a single client measured in the same run (the baseline).

    .venv/bin/python benchmarks/web_load.py                 # 32 clients, 30 s (the issue's figure)
    .venv/bin/python benchmarks/web_load.py --clients 8 --duration 5 --baseline 3

Goal: 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ctistudio.config import load_settings
from ctistudio.testing.lmstudio_double import LMStudioDouble

WORDS_TEXT = (
    "the actor used rundll32.exe comsvcs.dll MiniDump to dump lsass memory then ran powershell -enc "
    "with a scheduled task named Updater under HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run "
    "and exfiltrated data to a domain over https while defenders watched process creation events"
)
WORDS = WORDS_TEXT.split(" ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed_articles(env: dict[str, str], count: int) -> list[int]:
    """Create the database and ``count`` synthetic articles; return their ids."""
    from ctistudio.store import Store
    from ctistudio.store.articles import NewArticle, add_article

    settings = load_settings({"data_dir": env["CTISTUDIO_DATA_DIR"]}, env_file=None)
    rng = random.Random(7)
    ids = []
    with Store(settings) as store, store.session() as session:
        for n in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(1200))
            article = add_article(
                session,
                NewArticle(
                    title=f"Synthetic intrusion report {n}",
                    content=text,
                    content_hash=hashlib.sha256(f"{n}{text}".encode()).hexdigest(),
                    simhash=rng.getrandbits(64),
                    hunt_score=rng.randint(0, 100),
                    platforms=["windows"],
                ),
            )
            ids.append(article.id)
    return ids


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "ctistudio.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503):
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not answer /health within 60 s")


async def client_loop(
    client: httpx.AsyncClient, groups: list[list[str]], until: float, results: dict[str, list[float]], errors: dict
) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        path = rng.choice(rng.choice(groups))  # each endpoint a third of the requests
        base = path.split("?")[0]
        kind = "/articles/{id}" if base.startswith("/articles/") else base
        started = time.perf_counter()
        try:
            response = await client.get(path)
            ok = response.status_code == 200
        except httpx.HTTPError as exc:
            ok, response = False, exc
        elapsed = time.perf_counter() - started
        if ok:
            results.setdefault(kind, []).append(elapsed)
        else:
            errors[kind] = errors.get(kind, 0) + 1
            example = (
                f"HTTP {response.status_code}: {response.text[:150]}"
                if isinstance(response, httpx.Response)
                else f"{type(response).__name__}: {response!r}"[:200]
            )
            errors.setdefault("examples", []).append(f"{path} → {example}")


async def load(base: str, paths: list[list[str]], clients: int, duration: float):
    results: dict[str, list[float]] = {}
    errors: dict = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        until = time.monotonic() + duration
        started = time.monotonic()
        await asyncio.gather(*(client_loop(client, paths, until, results, errors) for _ in range(clients)))
        wall = time.monotonic() - started
    return results, errors, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(title: str, results: dict[str, list[float]], errors: dict, wall: float) -> float:
    total = sum(len(v) for v in results.values())
    error_count = sum(v for k, v in errors.items() if k != "examples")
    print(f"\n{title}: {total} requests in {wall:.1f} s = {total / wall:.1f} req/s, errors: {error_count}")
    print(f"  {'endpoint':<22} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for kind, values in sorted(results.items()):
        print(
            f"  {kind:<22} {len(values):>9} {len(values) / wall:>8.1f} {percentile(values, 0.5) * 1000:>8.1f} "
            f"{percentile(values, 0.95) * 1000:>8.1f} {statistics.fmean(values) * 1000:>8.1f}"
        )
    for example in errors.get("examples", [])[:5]:
        print(f"  error: {example}")
    return total / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the single-client baseline")
    parser.add_argument("--articles", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LMStudioDouble() as lms:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CTISTUDIO_", "LMSTUDIO_", "LLM_"))}
        env.update(lms.env())
        env.update({"CTISTUDIO_DATA_DIR": str(Path(tmp) / "data"), "CTISTUDIO_LOG_DIR": str(Path(tmp) / "logs")})
        ids = seed_articles(env, args.articles)
        port = free_port()
        server = start_server(env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            pages = [f"/articles/{article_id}" for article_id in random.Random(1).sample(ids, min(20, len(ids)))]
            paths = [["/articles", "/articles?order=hunt_score&min_score=50"], pages, ["/api/providers"]]
            print(f"server: pid {server.pid} at {base}; {len(ids)} articles; machine: {os.cpu_count()} CPU(s)")
            baseline = report("baseline, 1 client", *asyncio.run(load(base, paths, 1, args.baseline)))
            results, errors, wall = asyncio.run(load(base, paths, args.clients, args.duration))
            rate = report(f"load, {args.clients} clients", results, errors, wall)
            print(f"\nthroughput ratio {args.clients} clients / 1 client: {rate / baseline:.2f}×")
            error_count = sum(v for k, v in errors.items() if k != "examples")
            print(f"goal 0 errors: {'met' if error_count == 0 else 'NOT met'}")
            return 0 if error_count == 0 else 1
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    raise SystemExit(main())
