"""What runs on a schedule, defined once for both schedulers.

- ``ctistudio scheduler`` (with ``CTISTUDIO_BROKER_URL``): Celery beat puts each job on its queue when due
  (:func:`beat_schedule`), and workers execute it;
- ``ctistudio serve --schedule`` (without a broker): :class:`InProcessSchedule` runs the same jobs as asyncio
  tasks in the web app's process.

Jobs: ``poll-sources`` every ``CTISTUDIO_SCHEDULE_TICK`` seconds (only the sources whose own interval has
elapsed are fetched; new articles are indexed and, with ``CTISTUDIO_AUTORUN_MIN_SCORE``, run), and
``refresh-sigma-index`` every ``CTISTUDIO_SIGMA_REFRESH_HOURS`` when ``CTISTUDIO_SIGMA_RULES_DIR`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctistudio.broker import POLL_SOURCES, REFRESH_SIGMA_INDEX
from ctistudio.config import Settings
from ctistudio.errors import CtiStudioError
from ctistudio.llm import Gateway
from ctistudio.store import Store
from ctistudio.workers.jobs import StartRun, poll_sources, refresh_sigma

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    task: str  # the Celery task that does it
    every: float  # seconds


def jobs(settings: Settings) -> list[Job]:
    out = [Job("poll-sources", POLL_SOURCES, settings.schedule_tick)]
    if settings.sigma_refresh_hours > 0 and settings.sigma_rules_dir is not None:
        out.append(Job("refresh-sigma-index", REFRESH_SIGMA_INDEX, settings.sigma_refresh_hours * 3600))
    return out


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The jobs as Celery beat entries (each expires when its next turn comes: no pile-up while workers are away)."""
    return {
        job.name: {"task": job.task, "schedule": job.every, "options": {"expires": job.every}} for job in jobs(settings)
    }


class InProcessSchedule:
    """Runs :func:`jobs` in this process until cancelled; one job's failure is logged, never fatal."""

    def __init__(
        self, settings: Callable[[], Settings], store: Store, gateway: Callable[[], Gateway], start_run: StartRun
    ) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.start_run = start_run
        self.passes: dict[str, int] = {}  # job name → how many times it ran

    async def run_forever(self) -> None:
        due: dict[str, float] = {}
        while True:
            settings = self.settings()
            now = time.monotonic()
            current = jobs(settings)
            for job in current:
                if due.setdefault(job.name, now) <= now:
                    await self._run(job, settings)
                    due[job.name] = time.monotonic() + job.every
            upcoming = min((due[job.name] for job in current), default=now + settings.schedule_tick)
            await asyncio.sleep(max(0.05, min(upcoming - time.monotonic(), settings.schedule_tick)))

    async def _run(self, job: Job, settings: Settings) -> None:
        try:
            if job.task == POLL_SOURCES:
                await poll_sources(settings, self.store, self.gateway(), self.start_run)
            elif job.task == REFRESH_SIGMA_INDEX:
                await refresh_sigma(settings, self.gateway())
        except CtiStudioError as error:
            log.warning("scheduled %s failed: %s", job.name, error)
        self.passes[job.name] = self.passes.get(job.name, 0) + 1
