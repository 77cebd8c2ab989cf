"""Big pastes through the web API: seconds, server memory and a concurrent /health, at 50k / 300k / 2M characters.

Each size is pasted (``POST /api/articles``) into a fresh ``ctistudio serve`` child process on 127.0.0.1
with the default embedded MiniLM embedder, in two shapes:

- ``prose``: CTI-like sentences with IPs, paths, URLs and hashes (what analysts paste);
- ``dotted``: ``1.1.1.1.…`` without a space — the shape that made two hunt-score patterns quadratic
  (100,000 characters took 277 s in the scorer before they were made linear).

For each paste it prints the request's seconds, the server's peak-memory growth (``VmHWM`` of the server
process), the slowest ``/health`` answered while the paste was in flight, and when the article's chunks
were all embedded (small articles are indexed within the request, big ones by a background job).
Linear growth shows as a flat "s per 100k" column. Goal: the 300k prose paste answers within 5 s.
``--no-index`` leaves the embedder out (storing and scoring alone: its memory without the ONNX model's).

    .venv/bin/python benchmarks/ingest_large.py                  # 50k, 300k, 2M; both shapes
    .venv/bin/python benchmarks/ingest_large.py --sizes 300000 --shapes prose
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

GOAL_SECONDS_300K = 5.0
PHRASE = (
    "the actor used powershell to download a payload from the staging server then executed rundll32 with a "
    "malicious dll registry run key persistence scheduled task named updater was created lateral movement "
    "via psexec and wmic process call create credential dumping with lsass access"
)
WORDS = PHRASE.split()


def prose(chars: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < chars:
        roll = rnd.random()
        if roll < 0.02:
            word = ".".join(str(rnd.randint(1, 254)) for _ in range(4))
        elif roll < 0.03:
            word = f"C:\\Windows\\Temp\\{rnd.choice(WORDS)}{rnd.randint(1, 999)}.exe"
        elif roll < 0.035:
            word = f"http://evil{rnd.randint(1, 99)}.example/{rnd.choice(WORDS)}"
        elif roll < 0.04:
            word = f"{rnd.getrandbits(128):032x}"
        else:
            word = rnd.choice(WORDS)
        out.append(word + ("\n\n" if len(out) % 80 == 79 else " "))
        size += len(out[-1])
    return (f"# Large report {chars}\n\n" + "".join(out))[:chars]


def dotted(chars: int) -> str:
    head = "# Dotted\n\n" + "See the list below for the full picture of the intrusion. " * 3
    return (head + "1." * (chars // 2))[:chars]


SHAPES = {"prose": prose, "dotted": dotted}


class Server:
    def __init__(self, workdir: Path, *, index: bool = True) -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CTISTUDIO_", "LMSTUDIO_", "LLM_"))}
        env.update(
            CTISTUDIO_DATA_DIR=str(workdir / "data"),
            CTISTUDIO_LOG_DIR=str(workdir / "logs"),
            CTISTUDIO_EMBEDDING_PROVIDER="embedded",
            CTISTUDIO_PYPI_INDEX_URL="http://127.0.0.1:9/simple",
            LMSTUDIO_API_URL="http://127.0.0.1:9/v1",
            LLM_PROVIDER="embedded",
        )
        if not index:  # embeddings from a dead local port: the article is stored, not indexed
            env.update(
                CTISTUDIO_EMBEDDING_PROVIDER="lmstudio", LMSTUDIO_EMBEDDING_URL="http://127.0.0.1:9/v1/embeddings"
            )
        for key in ("CTISTUDIO_MODELS_DIR",):
            if key in os.environ:
                env[key] = os.environ[key]
        self.url = f"http://127.0.0.1:{port}"
        self.database = workdir / "data" / "ctistudio.db"
        self.log = (workdir / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ctistudio.cli.main", "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/health", timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def chunks(self, article_id: int) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as db:
            return db.execute("SELECT count(*) FROM chunks WHERE article_id = ?", (article_id,)).fetchone()[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _watch_health(url: str, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(url + "/health")
            worst[0] = max(worst[0], time.perf_counter() - started)
            time.sleep(0.1)


def measure(shape: str, chars: int, index_timeout: float, index: bool) -> dict[str, float | int | str]:
    text = SHAPES[shape](chars)
    with tempfile.TemporaryDirectory(prefix="ctistudio-ingest-large-") as tmp:
        server = Server(Path(tmp), index=index)
        try:
            httpx.post(server.url + "/api/articles", json={"text": prose(2000, seed=1)}, timeout=300)  # warm
            before = server.peak_mb()
            stop, worst = threading.Event(), [0.0]
            watcher = threading.Thread(target=_watch_health, args=(server.url, stop, worst))
            watcher.start()
            started = time.perf_counter()
            answer = httpx.post(server.url + "/api/articles", json={"text": text}, timeout=900)
            seconds = time.perf_counter() - started
            stop.set()
            watcher.join()
            body = answer.json()
            article_id = body.get("article_id")
            indexed = float("nan")
            chunks = 0
            if answer.status_code == 201 and article_id and index:
                deadline = time.perf_counter() + index_timeout
                while time.perf_counter() < deadline:
                    chunks = server.chunks(article_id)
                    if chunks:
                        indexed = time.perf_counter() - started
                        break
                    time.sleep(0.5)
            return {
                "shape": shape,
                "chars": len(text),
                "status": answer.status_code,
                "seconds": seconds,
                "memory_mb": server.peak_mb() - before,
                "health_s": worst[0],
                "indexed_s": indexed,
                "chunks": chunks,
            }
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 300_000, 2_000_000])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["prose", "dotted"])
    parser.add_argument("--index-timeout", type=float, default=900, help="seconds to wait for the chunks")
    parser.add_argument("--no-index", action="store_true", help="no embedder: measure storing alone")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    print(
        f"{'shape':7} {'chars':>9} {'status':>6} {'request s':>9} {'s/100k':>7} {'+peak MiB':>9} "
        f"{'/health s':>9} {'indexed s':>9} {'chunks':>6}"
    )
    verdict = 0
    for shape in args.shapes:
        for size in args.sizes:
            row = measure(shape, size, args.index_timeout, index=not args.no_index)
            per_100k = row["seconds"] / (row["chars"] / 100_000)
            print(
                f"{row['shape']:7} {row['chars']:>9,} {row['status']:>6} {row['seconds']:>9.2f} {per_100k:>7.2f} "
                f"{row['memory_mb']:>9.0f} {row['health_s']:>9.2f} {row['indexed_s']:>9.1f} {row['chunks']:>6}",
                flush=True,
            )
            if shape == "prose" and size == 300_000 and row["seconds"] > GOAL_SECONDS_300K:
                verdict = 1
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print("goal (300k prose within 5 s):", "met" if verdict == 0 else "MISSED")
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
