"""The files of a run: JSON that fits the published schema, Markdown with the table and the charts, PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from PIL import Image

from ctistudio.bench import BenchOptions, BenchReport, list_reports, load_report, run_benchmark, write_report
from ctistudio.bench.report import SUMMARY_HEADER
from ctistudio.testing.lmstudio_double import LMStudioDouble

from .conftest import answer_for


async def _report(start_double, bench_settings, **options) -> BenchReport:
    lms = start_double(LMStudioDouble, latency=0.02, token_latency=0.001)
    lms.responder = answer_for
    defaults = {"providers": ["lmstudio", "mlx"], "tasks": ["rank", "sigma", "chat"], "quick": True}
    return await run_benchmark(BenchOptions(**{**defaults, **options}), settings=bench_settings(lms))


async def test_json_markdown_and_charts_are_well_formed(start_double, bench_settings, tmp_path: Path):
    report = await _report(start_double, bench_settings, concurrency=2, compare_raw=True)
    out = tmp_path / "logs"
    files = write_report(report, out)

    assert files.results == f"llm_benchmark_results_{report.run_id}.json"
    assert files.markdown == f"LLM_BENCHMARK_REPORT_{report.run_id}.md"
    data = json.loads((out / files.results).read_text())
    jsonschema.validate(data, BenchReport.model_json_schema())
    assert data["schema_version"] == 1
    assert data["environment"]["cpu_count"] >= 1 and data["environment"]["ram_bytes"] > 0
    assert data["environment"]["versions"]["python"]
    assert load_report(out / files.results) == report

    markdown = (out / files.markdown).read_text()
    assert "| " + " | ".join(SUMMARY_HEADER) + " |" in markdown
    for target in report.results:
        for task in target.tasks:
            assert f"| {target.provider} | {target.model} | {task.task} |" in markdown
    assert "## Concurrency" in markdown and "## Gateway overhead" in markdown
    assert "## Unavailable" in markdown and "| mlx |" in markdown
    assert set(files.charts) == {"latency", "throughput"}
    for name in files.charts.values():
        assert f"]({name})" in markdown
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 300


async def test_a_run_that_measured_nothing_still_writes_a_report_without_charts(bench_settings, tmp_path: Path):
    report = await run_benchmark(
        BenchOptions(providers=["lmstudio"], tasks=["rank"], quick=True),
        settings=bench_settings(lmstudio_api_url="http://127.0.0.1:9/v1"),
    )
    files = write_report(report, tmp_path)
    assert files.charts == {}
    markdown = (tmp_path / files.markdown).read_text()
    assert "Nothing was measured" in markdown and "| lmstudio |" in markdown
    jsonschema.validate(json.loads((tmp_path / files.results).read_text()), BenchReport.model_json_schema())


async def test_runs_in_the_same_second_get_distinct_files_newest_first(start_double, bench_settings, tmp_path):
    report = await _report(start_double, bench_settings, providers=["lmstudio"], tasks=["chat"])
    first = write_report(report, tmp_path).results
    second = write_report(report, tmp_path).results
    assert first != second and second.endswith("_2.json")
    assert [p.name for p in list_reports(tmp_path)] == [second, first]
