"""The task broker (Celery on Redis) as the rest of ctistudio sees it: configuration and enqueueing.

``CTISTUDIO_BROKER_URL`` unset (the embedded default): nothing here is used, runs execute in the process that
starts them. Set (``redis://host:6379/0``): the web app and the CLI enqueue work with :class:`Broker`, and
``ctistudio worker`` processes (:mod:`ctistudio.workers`) execute it. Two queues, as in the spec's set-up:

- ``workflow``: pipeline runs (the LLM steps rank, extract, sigma, repair) — the spec's ``workflow_worker``;
- ``default``: ingestion (source polls), chunking/embedding for search, the SigmaHQ index refresh.

Tasks are acknowledged late (after they finish) and every task is idempotent, so a task whose worker died
is simply delivered again: Redis hands an unacknowledged task to another worker after
``CTISTUDIO_BROKER_VISIBILITY_TIMEOUT`` seconds, and a pipeline run resumes from its last finished step.
"""

from __future__ import annotations

import threading
from typing import Any

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError

WORKFLOW_QUEUE = "workflow"
DEFAULT_QUEUE = "default"
QUEUES = (WORKFLOW_QUEUE, DEFAULT_QUEUE)

RUN_PIPELINE = "ctistudio.run_pipeline"
POLL_SOURCES = "ctistudio.poll_sources"
INDEX_ARTICLES = "ctistudio.index_articles"
REFRESH_SIGMA_INDEX = "ctistudio.refresh_sigma_index"
TASK_QUEUES = {
    RUN_PIPELINE: WORKFLOW_QUEUE,
    POLL_SOURCES: DEFAULT_QUEUE,
    INDEX_ARTICLES: DEFAULT_QUEUE,
    REFRESH_SIGMA_INDEX: DEFAULT_QUEUE,
}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for ``settings`` (the same for the clients that enqueue and the workers)."""
    if not settings.broker_url:
        raise ConfigurationError(
            "no task broker is configured",
            fix="Set CTISTUDIO_BROKER_URL=redis://localhost:6379/0 (start Redis first: `redis-server`).",
        )
    visibility = settings.broker_visibility_timeout
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            # look for tasks of dead workers often enough to honour a short visibility timeout
            "unacked_restore_interval": max(1, min(10, int(visibility // 4))),
            "unacked_restore_throttle": 1,
        },
        "task_acks_late": True,  # acknowledged when done: a worker killed mid-task leaves it to another
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a worker reserves only what it is executing
        "task_default_queue": DEFAULT_QUEUE,
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        "task_ignore_result": True,  # results live in the store (runs, checkpoints), not in Redis
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "enable_utc": True,
    }


def celery_app(settings: Settings, name: str = "ctistudio") -> Any:
    """A Celery application configured for ``settings`` (imported here: Celery loads only with a broker)."""
    from celery import Celery

    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def check_broker(settings: Settings, timeout: float = 3.0) -> None:
    """Fail now, with the fix, when the broker does not answer (instead of a worker retrying forever)."""
    import redis

    url = str(settings.broker_url)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except (redis.exceptions.RedisError, ValueError) as exc:
        raise ConfigurationError(
            f"the task broker at {url} does not answer ({exc})",
            fix="Start Redis (`redis-server`, or the compose file's redis service) and check "
            "CTISTUDIO_BROKER_URL (redis://HOST:6379/0).",
        ) from exc


class Broker:
    """Enqueues tasks by name on the broker of ``settings`` (the web app and the CLI use it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = celery_app(self.settings, name="ctistudio-client")
            return self._app

    def enqueue(self, task: str, *args: Any, countdown: float | None = None) -> str:
        """Put ``task(*args)`` on its queue; returns the task id. Fails with the fix when Redis is down."""
        from kombu.exceptions import OperationalError

        try:
            result = self.app.send_task(task, args=list(args), queue=TASK_QUEUES[task], countdown=countdown)
        except OperationalError as exc:
            raise ConfigurationError(
                f"the task broker at {self.settings.broker_url} cannot be reached ({exc})",
                fix="Start Redis (`redis-server`, or the compose file's redis service), or unset "
                "CTISTUDIO_BROKER_URL to run everything in this process.",
            ) from exc
        return str(result.id)

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None
