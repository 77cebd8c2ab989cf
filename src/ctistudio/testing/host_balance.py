"""Several inference hosts, one of them killed under load: the scenario behind the host-spreading test and
``benchmarks/hosts.py``.

``hosts`` LM Studio doubles (real HTTP servers on 127.0.0.1) serve one provider through
``LMSTUDIO_API_URL=url1,url2,…``; ``requests`` chat requests go through one :class:`~ctistudio.llm.Gateway`
``concurrency`` at a time; when the doubles together have received ``kill_at`` chat requests, the first
double is stopped (its listening socket closed and its open connections cut, requests in flight included).

    outcome = await run_balance(hosts=3, requests=200, kill_at=50)
    outcome.failed, outcome.answered      # requests that raised; answers per host (status 200), in host order
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.llm.errors import LLMError
from ctistudio.testing.lmstudio_double import CHAT, ChatCall, LMStudioDouble


@dataclass
class BalanceOutcome:
    answered: list[int]  # chat answers (HTTP 200) each host sent, in the order of LMSTUDIO_API_URL
    received: list[int]  # chat requests each host received (the killed one's include those it never answered)
    failed: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    killed_after: int | None = None  # requests the doubles had received when the first one was stopped

    @property
    def survivors(self) -> list[int]:
        return self.answered[1:]

    @property
    def survivor_spread(self) -> float:
        """(most − fewest) / most answers among the hosts left running: 0 is a perfectly even share."""
        most = max(self.survivors)
        return (most - min(self.survivors)) / most if most else 0.0


class _Killer:
    """Stops ``victim`` (in another thread) once the doubles have received ``at`` chat requests."""

    def __init__(self, victim: LMStudioDouble, at: int) -> None:
        self.victim = victim
        self.at = at
        self.count = 0
        self.fired_at: int | None = None
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def __call__(self, call: ChatCall) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.at and self.thread is None:
                self.fired_at = self.count
                self.thread = threading.Thread(target=self.victim.stop, daemon=True)
                self.thread.start()
        return None  # the double's default answer


async def run_balance(
    *,
    hosts: int = 3,
    requests: int = 200,
    kill_at: int | None = 50,
    concurrency: int = 12,
    latency: float = 0.02,
    max_in_flight: int = 4,
) -> BalanceOutcome:
    """Run the scenario and count (see the module docstring); the environment is restored afterwards."""
    doubles = [LMStudioDouble(latency=latency).start() for _ in range(hosts)]
    killer = _Killer(doubles[0], kill_at) if kill_at else None
    for double in doubles:
        double.responder = killer
    saved = dict(os.environ)
    os.environ.update(
        LMSTUDIO_API_URL=",".join(d.url for d in doubles),
        LLM_PROVIDER="lmstudio",
        CTISTUDIO_MAX_IN_FLIGHT=str(max_in_flight),
        CTISTUDIO_RETRY_BACKOFF="0.01",
    )
    try:
        gateway = Gateway(load_settings(env_file=None))
        slots = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def one(number: int) -> None:
            async with slots:
                try:
                    await gateway.chat(f"request {number}", task="rank", max_tokens=8)
                except LLMError as error:
                    errors.append(f"{number}: {error}")

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(requests)))
        seconds = time.perf_counter() - started
        await gateway.aclose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if killer is not None and killer.thread is not None:
            killer.thread.join(timeout=10)
        for double in doubles:
            double.stop()
    return BalanceOutcome(
        answered=[sum(1 for r in d.requests_to(CHAT) if r.status == 200) for d in doubles],
        received=[len(d.requests_to(CHAT)) for d in doubles],
        failed=len(errors),
        errors=errors[:5],
        seconds=seconds,
        killed_after=killer.fired_at if killer else None,
    )
