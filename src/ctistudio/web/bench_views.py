"""Benchmarks page: runs of ``ctistudio bench`` read back from their files (history, tables, charts), and a
benchmark started from the page (one at a time, in this server's event loop)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctistudio import bench
from ctistudio.bench import BenchReport
from ctistudio.errors import CtiStudioError, InvalidInput, NotFound
from ctistudio.web.context import AppContext

log = logging.getLogger(__name__)
TaskName = Literal["rank", "extract", "sigma", "chat"]
ALL_TASKS: tuple[TaskName, ...] = ("rank", "extract", "sigma", "chat")
RUN_ID = re.compile(r"^[0-9]{8}_[0-9]{6}(_[0-9]+)?$")


class BenchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providers: list[str] = Field(default_factory=list, max_length=10, description="Empty: every available one.")
    tasks: list[TaskName] = Field(default_factory=lambda: list(ALL_TASKS), min_length=1)
    quick: bool = True
    repeat: int | None = Field(None, ge=1, le=20)


class BenchRunRow(BaseModel):
    run_id: str
    started_at: str
    duration_s: float
    providers: list[str]
    tasks: list[str]
    quick: bool
    measured: int
    unavailable: int


class BenchJob(BaseModel):
    running: bool = False
    started: float | None = None
    finished: float | None = None
    request: BenchRequest | None = None
    run_id: str | None = None
    error: str | None = None


class BenchJobs:
    """The one benchmark this server may be running, and how the last one ended."""

    def __init__(self) -> None:
        self.job = BenchJob()
        self._task: asyncio.Task[None] | None = None

    def start(self, ctx: AppContext, request: BenchRequest) -> BenchJob:
        if self._task is not None and not self._task.done():
            raise InvalidInput("a benchmark is running already", fix="Wait for it to finish (see its status).")
        settings = ctx.settings()
        for name in request.providers:
            from ctistudio.web.providers_service import check_provider_name

            check_provider_name(name)
        options = bench.BenchOptions(
            providers=request.providers, tasks=list(request.tasks), quick=request.quick, repeat=request.repeat
        )
        self.job = BenchJob(running=True, started=time.time(), request=request)

        async def run() -> None:
            try:
                report = await bench.run_benchmark(options, settings=settings)
                bench.write_report(report, settings.log_dir)
                self.job.run_id = report.run_id
            except CtiStudioError as error:
                self.job.error = str(error)
            except Exception as error:  # the page must show that it ended, and how
                log.exception("benchmark from the web app failed")
                self.job.error = f"unexpected {type(error).__name__}: {error}"
            finally:
                self.job.running = False
                self.job.finished = time.time()

        self._task = asyncio.create_task(run(), name="web-benchmark")
        return self.job

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def history(ctx: AppContext, limit: int = 50) -> list[BenchRunRow]:
    rows = []
    for path in bench.list_reports(ctx.settings().log_dir)[:limit]:
        try:
            report = bench.load_report(path)
        except CtiStudioError as error:
            log.info("skipping %s: %s", path.name, error.message)
            continue
        rows.append(
            BenchRunRow(
                run_id=report.run_id,
                started_at=report.started_at,
                duration_s=report.duration_s,
                providers=sorted({r.provider for r in report.results}),
                tasks=list(report.params.tasks),
                quick=report.params.quick,
                measured=sum(1 for r in report.results if r.status == "measured"),
                unavailable=len(report.unavailable),
            )
        )
    return rows


def load(ctx: AppContext, run_id: str) -> BenchReport:
    if not RUN_ID.match(run_id):
        raise InvalidInput(f"{run_id!r} is not a benchmark run id", fix="Run ids look like 20260101_120000.")
    path = ctx.settings().log_dir / f"llm_benchmark_results_{run_id}.json"
    if not path.is_file():
        raise NotFound(f"no benchmark run {run_id}", fix="See the Benchmarks page for the runs.")
    return bench.load_report(path)


def table(ctx: AppContext, report: BenchReport) -> tuple[list[str], list[list[Any]]]:
    from ctistudio.bench.report import SUMMARY_HEADER, summary_rows

    return SUMMARY_HEADER, summary_rows(report)


def chart_file(ctx: AppContext, run_id: str, name: str) -> Path:
    """A chart PNG of a run: only files the run's report names, inside CTISTUDIO_LOG_DIR."""
    report = load(ctx, run_id)
    charts = report.files.charts if report.files else {}
    if name not in charts.values():
        raise NotFound(f"run {run_id} has no chart {name!r}")
    base = ctx.settings().log_dir.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise NotFound(f"chart {name} is missing from {base}")
    return path
