"""PNG charts of a benchmark (matplotlib's Agg canvas: no display, and no pyplot global state, so it is
safe in the web app's threads).

- ``latency``: warm p50 latency per provider/model, one bar per task, whiskers up to p95.
- ``throughput``: generation and prompt tokens/s (warm medians) per provider/model and task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ctistudio.bench.models import BenchReport, TaskResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Cells = dict[tuple[str, str], float]

CHART_NAMES = ("latency", "throughput")


def _series(report: BenchReport) -> tuple[list[str], list[str], dict[tuple[str, str], TaskResult]]:
    """Target labels, task names, and each (label, task)'s result — measured targets only."""
    labels: list[str] = []
    tasks: list[str] = []
    cells: dict[tuple[str, str], TaskResult] = {}
    for target in report.results:
        if target.status != "measured":
            continue
        label = f"{target.provider}\n{target.model}"
        if label not in labels:
            labels.append(label)
        for task in target.tasks:
            if task.task not in tasks:
                tasks.append(task.task)
            cells[(label, task.task)] = task
    return labels, tasks, cells


def _grouped_bars(axis: Axes, labels: list[str], tasks: list[str], values: Cells, errors: Cells | None = None) -> None:
    width = 0.8 / max(1, len(tasks))
    for index, task in enumerate(tasks):
        present = [n for n, label in enumerate(labels) if values.get((label, task)) is not None]
        xs = [n + (index - (len(tasks) - 1) / 2) * width for n in present]
        heights = [values[(labels[n], task)] for n in present]
        yerr = None
        if errors is not None:
            yerr = [[0.0] * len(present), [errors.get((labels[n], task)) or 0.0 for n in present]]
        axis.bar(xs, heights, width, label=task, yerr=yerr, capsize=3)
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels(labels, fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)


def write_charts(report: BenchReport, out_dir: Path, stem: str) -> dict[str, str]:
    """Write the charts next to the report; returns chart name → file name (empty when nothing was measured)."""
    labels, tasks, cells = _series(report)
    if not labels:
        return {}
    files: dict[str, str] = {}
    width = max(6.0, 1.6 * len(labels) + 2)

    figure = _figure(width, 4.5)
    axis = figure.subplots()
    p50 = {key: cell.latency.p50 for key, cell in cells.items() if cell.latency}
    spread = {key: cell.latency.p95 - cell.latency.p50 for key, cell in cells.items() if cell.latency}
    _grouped_bars(axis, labels, tasks, p50, spread)
    axis.set_ylabel("seconds (warm p50, whisker to p95)")
    axis.set_title("Latency per call")
    files["latency"] = _save(figure, out_dir / f"{stem}_latency.png")

    figure = _figure(width, 7.5)
    top, bottom = figure.subplots(2, 1, sharex=True)
    generation = {key: cell.generation_tps.p50 for key, cell in cells.items() if cell.generation_tps}
    prompt = {key: cell.prompt_tps.p50 for key, cell in cells.items() if cell.prompt_tps}
    _grouped_bars(top, labels, tasks, generation)
    top.set_ylabel("generated tokens/s")
    top.set_title("Throughput (warm medians)")
    _grouped_bars(bottom, labels, tasks, prompt)
    bottom.set_ylabel("prompt tokens/s")
    files["throughput"] = _save(figure, out_dir / f"{stem}_throughput.png")
    return files


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path.name
