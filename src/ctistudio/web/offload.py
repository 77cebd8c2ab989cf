"""CPU work of a request (parsing a rule, scoring a paste) runs in a worker thread, not on the event loop.

One slow request must never stall the others: while a worker thread validates a rule or scores a pasted
article, the event loop keeps answering ``/health`` and every other request. Work that only *reads* (a
validation) also gets a time limit: past it the client gets a 400 with the reason, and the thread's
result is dropped when it ends (the parsers it calls are bounded themselves, see
:mod:`ctistudio.safe_yaml`, so it does end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from ctistudio.errors import InvalidInput

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
