"""Benchmarks: history and results of ``ctistudio bench`` (the same files), charts, run one from the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ctistudio.web import bench_views as views
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/benchmarks", tags=["benchmarks"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

RunId = Annotated[str, Path(max_length=40, pattern=r"^[0-9_]+$")]
FileName = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+\.png$")]


def _jobs(request: Request) -> views.BenchJobs:
    return request.app.state.bench_jobs


@api.get("", response_model=list[views.BenchRunRow])
async def list_benchmarks(ctx: CtxDep):
    """Benchmark runs found in CTISTUDIO_LOG_DIR, newest first."""
    return views.history(ctx)


@api.post("", response_model=views.BenchJob, status_code=202)
async def start_benchmark(request: Request, ctx: CtxDep, body: views.BenchRequest):
    """Start a benchmark (one at a time); follow it at GET /api/benchmarks/current."""
    return _jobs(request).start(ctx, body)


@api.get("/current", response_model=views.BenchJob)
async def current_benchmark(request: Request):
    """Whether a benchmark started here is running, and the run id or error of the last one."""
    return _jobs(request).job


@api.get("/{run_id}")
async def get_benchmark(ctx: CtxDep, run_id: RunId) -> dict[str, Any]:
    """One run's full results (the JSON file of ``ctistudio bench``)."""
    return views.load(ctx, run_id).model_dump(mode="json")


@pages.get("/benchmarks")
async def benchmarks_page(request: Request, ctx: CtxDep) -> Response:
    return request.app.state.templates.TemplateResponse(
        request,
        "benchmarks.html",
        {"runs": views.history(ctx), "job": _jobs(request).job, "log_dir": ctx.settings().log_dir},
    )


@pages.get("/benchmarks/status")
async def benchmark_status(request: Request) -> Response:
    job = _jobs(request).job
    status = 286 if not job.running else 200  # htmx stops polling once it ended
    return request.app.state.templates.TemplateResponse(request, "_bench_job.html", {"job": job}, status_code=status)


@pages.post("/benchmarks/run")
async def run_benchmark_form(request: Request, ctx: CtxDep) -> Response:
    _jobs(request).start(ctx, views.BenchRequest(quick=True))
    return Response(status_code=204, headers={"HX-Redirect": "/benchmarks"})


@pages.get("/benchmarks/{run_id}")
async def benchmark_page(request: Request, ctx: CtxDep, run_id: RunId) -> Response:
    report = views.load(ctx, run_id)
    header, rows = views.table(ctx, report)
    return request.app.state.templates.TemplateResponse(
        request, "benchmark.html", {"report": report, "header": header, "rows": rows}
    )


@pages.get("/benchmarks/{run_id}/{name}", response_class=FileResponse)
async def benchmark_chart(ctx: CtxDep, run_id: RunId, name: FileName) -> FileResponse:
    return FileResponse(views.chart_file(ctx, run_id, name), media_type="image/png")
