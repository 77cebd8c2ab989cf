"""Workers for teams: Celery on Redis (``CTISTUDIO_BROKER_URL``), started with ``ctistudio worker`` and
``ctistudio scheduler``.

- :mod:`ctistudio.workers.app` — the Celery application, the worker and the beat scheduler;
- :mod:`ctistudio.workers.tasks` — the tasks: pipeline runs (queue ``workflow``), source polls, indexing and
  the SigmaHQ index refresh (queue ``default``);
- :mod:`ctistudio.workers.context` — what a worker process keeps, and a run's execution under its lease;
- :mod:`ctistudio.workers.jobs` / :mod:`ctistudio.workers.schedule` — the scheduled jobs, shared with
  ``ctistudio serve --schedule`` (no broker).

Enqueueing lives in :mod:`ctistudio.broker` (the web app and the CLI need no worker code for it).
"""
