"""Real ``ctistudio worker`` processes for tests and ``benchmarks/workers.py``, and the article set they run.

    with RedisServer() as redis, LMStudioDouble(latency=0.3) as lms:
        env = fleet_env(redis.url(), database_url, data_dir, lms)
        with WorkerFleet(env, count=2) as fleet:           # two workers, concurrency 1 each, ready to take tasks
            fleet.kill(0)                                  # SIGKILL: no warm shutdown, its task unacknowledged
        with ctistudio_process(env, "scheduler"): ...      # ctistudio scheduler (Celery beat)

Each worker is ``python -m ctistudio.cli.main worker --queues workflow,default --concurrency N --name wK@fleet``
with its output in ``<log_dir>/wK.log``; :meth:`WorkerFleet.start` returns once each says it takes tasks.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article


def fleet_env(broker_url: str, database_url: str, data_dir: Path, lmstudio: Any, **extra: str) -> dict[str, str]:
    """The environment of workers (and of the process that enqueues) for one test or benchmark."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CTISTUDIO_", "LMSTUDIO_", "LLM_"))}
    return {
        **keep,
        **lmstudio.env(),
        "LLM_PROVIDER": "lmstudio",
        "CTISTUDIO_BROKER_URL": broker_url,
        "CTISTUDIO_DATABASE_URL": database_url,
        "CTISTUDIO_DATA_DIR": str(data_dir),
        "CTISTUDIO_LOG_DIR": str(data_dir / "logs"),
        "CTISTUDIO_EMBEDDED": "false",
        "CTISTUDIO_RETRY_BACKOFF": "0.01",
        "CTISTUDIO_RUN_LEASE_SECONDS": "2",
        "CTISTUDIO_BROKER_VISIBILITY_TIMEOUT": "3",
        **extra,
    }


def add_demo_variants(store: Store, count: int) -> list[int]:
    """``count`` articles: the demo report, each with its own title and a closing line (distinct hashes)."""
    ids = []
    for number in range(1, count + 1):
        content = f"{demo_article()}\n\nCase {number}: the same intrusion set, seen at site {number}.\n"
        digest = hashlib.sha256(content.encode()).hexdigest()
        with store.session() as session:
            article = add_article(
                session,
                NewArticle(
                    title=f"Operation Paper Lantern, case {number}",
                    content=content,
                    content_hash=digest,
                    simhash=int(digest[:15], 16),
                    origin="text",
                    platforms=["windows"],
                    platform_evidence={"windows": ["rundll32.exe"]},
                    hunt_score=60,
                ),
            )
            ids.append(article.id)
    return ids


class WorkerFleet:
    """``count`` worker processes sharing ``env`` (see the module docstring)."""

    def __init__(self, env: dict[str, str], *, count: int, concurrency: int = 1, queues: str = "workflow,default"):
        self.env = env
        self.count = count
        self.concurrency = concurrency
        self.queues = queues
        self.log_dir = Path(env["CTISTUDIO_LOG_DIR"])
        self.processes: list[subprocess.Popen[bytes]] = []

    def name(self, index: int) -> str:
        return f"w{index}@fleet"

    def log(self, index: int) -> str:
        path = self.log_dir / f"w{index}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 240) -> WorkerFleet:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            argv = [sys.executable, "-m", "ctistudio.cli.main", "worker", "--queues", self.queues]
            argv += ["--concurrency", str(self.concurrency), "--name", self.name(index)]
            with open(self.log_dir / f"w{index}.log", "wb") as out:
                self.processes.append(
                    subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.log_dir)
                )
        deadline = time.monotonic() + timeout
        for index, process in enumerate(self.processes):
            while "ready: taking tasks" not in self.log(index):
                if process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"worker {self.name(index)} did not start:\n{self.log(index)[-3000:]}")
                time.sleep(0.1)
        return self

    def kill(self, index: int) -> None:
        """SIGKILL worker ``index``: it dies mid-task, without acknowledging or releasing anything."""
        process = self.processes[index]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            _reap(process)

    def __enter__(self) -> WorkerFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def ctistudio_process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``ctistudio ARGS`` as a process (``scheduler``, ``serve --schedule``), its output in
    ``<log_dir>/<first arg>.log``; terminated when the block ends."""
    log_dir = Path(env["CTISTUDIO_LOG_DIR"])
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{args[0]}.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctistudio.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
        )
    try:
        yield process
    finally:
        process.terminate()
        _reap(process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a terminated process (warm shutdown finishes the task at hand); kill it if it hangs."""
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
