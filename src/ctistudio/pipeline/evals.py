"""Evals of the extract and sigma steps on labelled article sets.

A set is a folder with ``articles.json`` (``[{url, title, content, expected_count}]``) and
``ground_truth.json`` — for extraction ``[{url, expected_items: [str]}]``, for Sigma
``[{url, expected_rule_count, expected_rules: [{logsource, detection, level}]}]``.

Matching is exact after normalisation (refanging, case, whitespace; see
:func:`ctistudio.pipeline.normalise.normalise_item`), the same rule the labels were written for. Scores are
micro-averaged: true/false positives and misses summed over a set's articles.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ctistudio.errors import InvalidInput
from ctistudio.pipeline.normalise import normalise_item

# Folder names of known sets → the sub-agent they evaluate.
SET_KINDS = {
    "cmdline": "cmdline",
    "command_lines": "cmdline",
    "registry_artifacts": "registry",
    "registry": "registry",
    "services": "service",
    "scheduled_tasks": "scheduled_task",
    "network": "network",
    "process_lineage": "lineage",
    "hunt_queries": "hunt_query",
}


class EvalArticle(BaseModel):
    url: str
    title: str = ""
    content: str


class PRF(BaseModel):
    """Counts and the precision/recall/F1 they give (1.0 by convention when there is nothing to get wrong)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def precision(self) -> float:
        return round(self.tp / (self.tp + self.fp), 4) if self.tp + self.fp else (1.0 if not self.fn else 0.0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recall(self) -> float:
        return round(self.tp / (self.tp + self.fn), 4) if self.tp + self.fn else 1.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return round(2 * p * r / (p + r), 4) if p + r else 0.0

    def add(self, other: PRF) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


def score_items(predicted: list[str], expected: list[str]) -> tuple[PRF, list[str], list[str]]:
    """Score normalised sets of strings: ``(counts, missed expected items, extra predicted items)``."""
    pred = {normalise_item(p): p for p in predicted if normalise_item(p)}
    gold = {normalise_item(e): e for e in expected if normalise_item(e)}
    hits = pred.keys() & gold.keys()
    missed = [gold[k] for k in gold if k not in hits]
    extra = [pred[k] for k in pred if k not in hits]
    return PRF(tp=len(hits), fp=len(extra), fn=len(missed)), missed, extra


def _logsource_counts(rules: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    from ctistudio.sigma.similarity.atoms import logsource_class

    return Counter(logsource_class(rule.get("logsource")) for rule in rules)


def _atoms(rules: list[dict[str, Any]]) -> set[str]:
    from ctistudio.sigma.similarity import RuleNotComparable, canonicalize

    out: set[str] = set()
    for rule in rules:
        try:
            out |= canonicalize(rule).atoms
        except RuleNotComparable:
            continue  # no usable detection: contributes no atom
    return out


def score_sigma(generated: list[dict[str, Any]], expected: list[dict[str, Any]]) -> dict[str, PRF]:
    """Log-source and atom scores of generated rules against labelled ones (both parsed YAML mappings).

    - ``logsource``: rules matched one-to-one by log-source class (product, category, service);
    - ``atoms``: the canonical detection atoms (``field|modifiers|value``, field aliases and case folded, the
      similarity engine's normalisation) of all generated rules against those of all expected rules.
    """
    got, want = _logsource_counts(generated), _logsource_counts(expected)
    matched = sum((got & want).values())
    logsource = PRF(tp=matched, fp=sum(got.values()) - matched, fn=sum(want.values()) - matched)
    got_atoms, want_atoms = _atoms(generated), _atoms(expected)
    shared = len(got_atoms & want_atoms)
    atoms = PRF(tp=shared, fp=len(got_atoms) - shared, fn=len(want_atoms) - shared)
    return {"logsource": logsource, "atoms": atoms}


def atom_differences(generated: list[dict[str, Any]], expected: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The expected atoms no generated rule has, and the generated atoms no expected rule has (sorted)."""
    got, want = _atoms(generated), _atoms(expected)
    return sorted(want - got), sorted(got - want)


# -- loading ------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(
            f"{path} not found", fix="Point --set at a folder with articles.json and ground_truth.json."
        ) from exc
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}", fix="Fix or regenerate the file.") from exc


def load_cases(set_dir: Path) -> list[tuple[EvalArticle, dict[str, Any]]]:
    """``(article, label)`` pairs of a set, joined on the URL; labels without an article are an error."""
    set_dir = Path(set_dir)
    articles = {a["url"]: EvalArticle.model_validate(a) for a in _read_json(set_dir / "articles.json")}
    cases = []
    for label in _read_json(set_dir / "ground_truth.json"):
        article = articles.get(label.get("url", ""))
        if article is None:
            raise InvalidInput(
                f"{set_dir}/ground_truth.json labels {label.get('url')!r}, which articles.json does not hold",
                fix="Add the article or remove the label.",
            )
        cases.append((article, label))
    if not cases:
        raise InvalidInput(f"{set_dir} has no labelled articles", fix="Check ground_truth.json.")
    return cases


def kind_of_set(set_dir: Path, agent: str | None = None) -> str:
    """The sub-agent a set evaluates: ``agent`` if given, else from the folder name."""
    from ctistudio.pipeline.extract import AGENTS_BY_KIND

    kind = agent or SET_KINDS.get(Path(set_dir).name)
    if kind not in AGENTS_BY_KIND:
        known = ", ".join(sorted(AGENTS_BY_KIND))
        raise InvalidInput(
            f"cannot tell which extractor {set_dir} evaluates", fix=f"Pass --agent with one of: {known}."
        )
    return kind


# -- reports ----------------------------------------------------------------------------------------------
class ArticleResult(BaseModel):
    url: str
    title: str = ""
    scores: dict[str, PRF]
    missed: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class EvalReport(BaseModel):
    """What ``ctistudio eval`` writes as JSON (and renders as Markdown)."""

    kind: str  # extract | sigma
    set: str
    set_path: str
    target: str  # the sub-agent (extract) or "sigma"
    mode: str  # model | pattern
    models: list[str] = Field(default_factory=list)
    totals: dict[str, PRF]
    articles: list[ArticleResult]
    seconds: float = 0.0
    extra: dict[str, Any] = Field(default_factory=dict)


def render_markdown(report: EvalReport) -> str:
    metrics = list(report.totals)
    lines = [
        f"# Eval {report.kind}: {report.set}",
        "",
        f"- set: `{report.set_path}` ({len(report.articles)} articles), target: {report.target}",
        f"- mode: {report.mode}" + (f", models: {', '.join(report.models)}" if report.models else ""),
        f"- time: {report.seconds:.1f} s",
        "",
        "| metric | precision | recall | F1 | tp | fp | fn |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in metrics:
        s = report.totals[name]
        lines.append(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.tp} | {s.fp} | {s.fn} |")
    for key, value in report.extra.items():
        lines.append(f"\n{key}: {value}")
    lines += ["", "## Per article", "", "| article | " + " | ".join(f"{m} P/R/F1" for m in metrics) + " |"]
    lines.append("|---|" + "---|" * len(metrics))
    for article in report.articles:
        cells = [
            f"{article.scores[m].precision:.2f}/{article.scores[m].recall:.2f}/{article.scores[m].f1:.2f}"
            for m in metrics
        ]
        lines.append(f"| {(article.title or article.url)[:70]} | " + " | ".join(cells) + " |")
    misses = [(a, m) for a in report.articles for m in a.missed]
    if misses:
        lines += ["", "## Missed (first 40)", ""]
        lines += [f"- `{m[:160]}` ({(a.title or a.url)[:50]})" for a, m in misses[:40]]
    return "\n".join(lines) + "\n"


def write_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<kind>-<set>.json`` and ``.md`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report.kind}-{report.set}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
