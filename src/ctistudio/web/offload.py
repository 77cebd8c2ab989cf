"""CPU work of a request (parsing a rule, scoring a paste) runs in a worker thread, not on the event loop;
work that may finish after the response (indexing a big article) runs as a background job.

One slow request must never stall the others: while a worker thread validates a rule or scores a pasted
article, the event loop keeps answering ``/health`` and every other request. Work that only *reads* (a
validation) also gets a time limit: past it the client gets a 400 with the reason, and the thread's
result is dropped when it ends (the parsers it calls are bounded themselves, see
:mod:`ctistudio.safe_yaml`, so it does end).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from ctistudio.errors import InvalidInput

log = logging.getLogger(__name__)
T = TypeVar("T")
VALIDATE_TIMEOUT = 10.0  # seconds for a read-only check of submitted text (a rule validation)


class TookTooLong(InvalidInput):
    """Read-only work on submitted text passed its time limit."""


async def off_loop(func: Callable[..., T], *args: Any, timeout: float | None = None, what: str = "the request") -> T:
    """``func(*args)`` in a worker thread; with ``timeout``, refused with :class:`TookTooLong` past it."""
    work = asyncio.to_thread(func, *args)
    if timeout is None:
        return await work
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise TookTooLong(
            f"{what} took longer than {timeout:g} s and was stopped",
            fix="Submit a smaller or simpler text.",
        ) from None


class BackgroundJobs:
    """Work that finishes after its response (indexing a big article for chat), one job at a time.

    Jobs run in order on the event loop (their CPU-heavy parts in worker threads), so several big pastes
    never embed at once; shutdown cancels what is left (a missed article is indexed by ``ctistudio rag
    backfill`` or the first search).
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn = asyncio.Lock()

    def submit(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(name, job), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        async with self._turn:
            try:
                log.info("%s: %s", name, await job())
            except Exception:  # a background job has no caller to report to: the log has it
                log.exception("%s failed", name)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every job submitted so far (tests and benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


class WorkerProcess:
    """One worker process for pure CPU work on big inputs (scoring a 2,000,000-character paste).

    A worker *thread* keeps the event loop free only between the bytecodes of Python code: one regular
    expression over two million characters holds the GIL for the whole scan, and ``/health`` waited
    seconds behind it. A separate process shares no GIL; one worker also bounds the CPU big pastes take.
    Started on first use (``spawn``: nothing of this process's threads is inherited), stopped at shutdown.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in the worker process (blocking: call it from a worker thread)."""
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
        return pool.submit(func, *args).result()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
