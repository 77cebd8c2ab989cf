"""``ctistudio worker`` and ``ctistudio scheduler``: the processes of a team set-up (``CTISTUDIO_BROKER_URL``).

A worker executes what the web app, the CLI and the scheduler put on the broker's queues: ``workflow``
(pipeline runs: the LLM steps) and ``default`` (source polls, indexing, the SigmaHQ index refresh). The
scheduler (Celery beat) puts the scheduled jobs on their queues when they are due. Without a broker there is
nothing to execute elsewhere: ``ctistudio serve --schedule`` runs the schedule in the web app's process.
"""

from __future__ import annotations

import typer

from ctistudio.cli.common import cli_errors, err_console, settings
from ctistudio.errors import ConfigurationError


def _require_broker() -> None:
    from ctistudio.broker import check_broker

    if settings().broker_url:
        check_broker(settings())
        return
    raise ConfigurationError(
        "CTISTUDIO_BROKER_URL is not set: there is no queue to take work from",
        fix="Start Redis and set CTISTUDIO_BROKER_URL=redis://localhost:6379/0 (see README 'Team set-up'); "
        "without a broker, runs execute in `ctistudio serve` / `ctistudio run`, and "
        "`ctistudio serve --schedule` runs the schedule.",
    )


def register(app: typer.Typer) -> None:
    @app.command("worker")
    @cli_errors
    def worker_command(
        queues: str = typer.Option(
            "workflow,default", "--queues", "-Q", help="Queues to take tasks from: workflow, default or both."
        ),
        concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, max=64, help="Tasks at once (threads)."),
        name: str | None = typer.Option(None, "--name", "-n", help="Worker name (default: QUEUES-PID@HOST)."),
    ) -> None:
        """Execute queued pipeline runs and jobs (needs CTISTUDIO_BROKER_URL); Ctrl-C stops after the task."""
        from ctistudio.workers.app import default_name, parse_queues, start_worker

        _require_broker()
        wanted = parse_queues(queues)
        shown = name or default_name(wanted)
        err_console.print(f"[dim]worker {shown}: queues {', '.join(wanted)}, concurrency {concurrency}[/]")
        start_worker(settings(), queues=wanted, concurrency=concurrency, name=shown)

    @app.command("scheduler")
    @cli_errors
    def scheduler_command() -> None:
        """Put scheduled jobs on the queues when due: source polls, autorun, SigmaHQ index refresh (Celery beat)."""
        from ctistudio.workers.app import start_scheduler
        from ctistudio.workers.schedule import jobs

        _require_broker()
        for job in jobs(settings()):
            err_console.print(f"[dim]scheduler: {job.name} every {job.every:g} s[/]")
        start_scheduler(settings())
