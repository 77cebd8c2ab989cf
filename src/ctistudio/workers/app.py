"""The Celery application of the workers, ``ctistudio worker`` and ``ctistudio scheduler``.

Workers use Celery's thread pool: a pipeline run is mostly waiting for LLM servers, every thread keeps its
own asyncio loop (:class:`~ctistudio.workers.context.WorkerContext`), and a killed worker takes all of its
threads with it (no orphaned child process finishing a step behind the new holder's back).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

from ctistudio.broker import QUEUES, celery_config
from ctistudio.config import Settings
from ctistudio.errors import InvalidInput
from ctistudio.workers.context import WorkerContext

app = Celery("ctistudio", set_as_current=False)

_state: dict[str, object] = {}
_lock = threading.Lock()


def configure(settings: Settings) -> Celery:
    """Point the application at ``settings``' broker (before a worker or the scheduler starts)."""
    app.conf.update(celery_config(settings))
    _state["settings"] = settings
    import ctistudio.workers.tasks  # noqa: F401  (registers the tasks on ``app``)

    return app


def context() -> WorkerContext:
    """This worker process's context, built on first use."""
    with _lock:
        ctx = _state.get("context")
        if ctx is None:
            settings = _state.get("settings")
            if not isinstance(settings, Settings):
                from ctistudio.config import load_settings

                settings = load_settings()
            ctx = _state["context"] = WorkerContext(settings)
        assert isinstance(ctx, WorkerContext)
        return ctx


def parse_queues(value: str) -> list[str]:
    queues = [q.strip() for q in value.split(",") if q.strip()]
    unknown = [q for q in queues if q not in QUEUES]
    if not queues or unknown:
        raise InvalidInput(
            f"unknown queue {unknown[0]!r}" if unknown else "no queue given",
            fix=f"Use one or both of: {', '.join(QUEUES)} (e.g. --queues workflow,default).",
        )
    return queues


def default_name(queues: Sequence[str]) -> str:
    return f"{'+'.join(queues)}-{os.getpid()}@{socket.gethostname()}"


@worker_ready.connect
def _say_ready(sender: object = None, **_: object) -> None:
    """One line on stderr at any log level (what supervisors and the test fleet wait for)."""
    print(f"{getattr(sender, 'hostname', 'worker')} ready: taking tasks", file=sys.stderr, flush=True)


def start_worker(settings: Settings, *, queues: Sequence[str], concurrency: int, name: str | None = None) -> None:
    """Run a worker in this process until it is stopped (SIGTERM/Ctrl-C: warm shutdown)."""
    configure(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per LLM request is the servers' business
    context().warm_up()  # store, gateway, pySigma and ATT&CK loaded before the first task, not during it
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname={name or default_name(queues)}",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def start_scheduler(settings: Settings) -> None:
    """Run Celery beat with the jobs of :mod:`ctistudio.workers.schedule` until stopped."""
    from ctistudio.ingest.service import IngestService
    from ctistudio.workers.schedule import beat_schedule

    configure(settings)
    ctx = context()
    IngestService(ctx.store, settings).sync_sources()  # sources.yaml into the store: the polls read it there
    app.conf.beat_schedule = beat_schedule(settings)
    state = Path(settings.data_dir) / "scheduler"
    state.mkdir(parents=True, exist_ok=True)
    beat = app.Beat(
        schedule=str(state / "celerybeat-schedule"),
        loglevel=settings.log_level,
        max_interval=min(60.0, settings.schedule_tick),
    )
    beat.run()
