"""Streaming helpers for the engine providers (llama-cpp-python, mlx-lm, Ollama).

:func:`iterate_in_thread` drives a blocking iterator (token stream) in a worker thread and hands each item
to the event loop through a queue, so the loop is never blocked; the consumer may stop early (the worker
stops at the next item). :class:`AnswerStream` collects the streamed pieces of an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from ctistudio.llm.reasoning import ThinkFilter, choose_answer

T = TypeVar("T")
_END = object()


async def iterate_in_thread(
    produce: Callable[[], Iterable[T]], *, lock: threading.Lock | None = None, name: str = "engine"
) -> AsyncIterator[T]:
    """Yield the items of ``produce()``, computed in a worker thread holding ``lock``; re-raise its errors."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        with lock or contextlib.nullcontext():
            try:
                for item in produce():
                    if stop.is_set():
                        break
                    hand_over((True, item))
            except BaseException as exc:  # handed to the consumer, which re-raises it
                hand_over((False, exc))
            finally:
                hand_over(_END)

    threading.Thread(target=pump, name=f"{name}-stream", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            ok, value = item
            if not ok:
                raise value
            yield value
    finally:
        stop.set()


class AnswerStream:
    """Collects a streamed answer: the pieces, the time to the first one, ``<think>`` blocks held back.

    ``feed(piece)`` returns the text to show now (possibly empty); ``flush()`` what is left at the end;
    ``answer()`` the final text and reasoning.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.pieces: list[str] = []
        self._think = ThinkFilter()

    def feed(self, piece: str) -> str:
        if not piece:
            return ""
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.pieces.append(piece)
        return self._think.feed(piece)

    def flush(self) -> str:
        return self._think.flush()

    def answer(self, reasoning: str | None = None) -> tuple[str, str | None]:
        return choose_answer("".join(self.pieces), reasoning)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
