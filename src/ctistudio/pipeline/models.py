"""Typed records of the pipeline's steps.

The LLM-facing answer schemas of rank and extract are built per article (an enum of its sentence numbers
for rank, of the listed candidates for each extraction agent): see :mod:`ctistudio.pipeline.rank` and
:mod:`ctistudio.pipeline.selection`. The records here are what the steps store (plain JSON, stable keys).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Band = Literal["none", "low", "moderate", "high", "excellent"]


def band_for(score: int) -> Band:
    """The band of a 1–10 huntability score: 1–2 none, 3–4 low, 5–6 moderate, 7–8 high, 9–10 excellent."""
    return ("none", "none", "low", "low", "moderate", "moderate", "high", "high", "excellent", "excellent")[
        max(1, min(10, score)) - 1
    ]


# -- extract --------------------------------------------------------------------------------------------
class Observable(BaseModel):
    """An observable as stored (one row per observable): a pre-extractor candidate (``pattern``), one the
    model selected, or a new item of the model that passed the hallucination guard (``model``)."""

    kind: str  # cmdline | lineage | registry | service | scheduled_task | network | hunt_query | hash
    value: str
    source_evidence: str
    justification: str = ""
    confidence: float = 0.5
    origin: Literal["model", "pattern"] = "model"
    # parent/child, network kind, query language, registry value_name/type/data, service image_path, task command
    attributes: dict[str, str] = Field(default_factory=dict)


class Dropped(BaseModel):
    """A new item of a model that the hallucination guard refused, kept for the run report."""

    kind: str
    value: str
    # not in the article; not shaped like its kind; only a piece of a longer item the pre-extractor found
    reason: Literal["value_not_in_article", "wrong_kind", "part_of_candidate"]


# -- sigma ------------------------------------------------------------------------------------------------
class RuleIssue(BaseModel):
    """One problem the validator found in a rule (see :class:`ctistudio.sigma.ValidationIssue`)."""

    severity: str  # error | warning | info
    code: str
    message: str
    location: str | None = None
    line: int | None = None


class GeneratedRule(BaseModel):
    """A rule after validate ⇄ repair. Invalid rules are kept, with their last errors."""

    rule_id: str
    group: str  # the log-source group it was generated for
    yaml: str
    title: str = ""
    logsource: dict[str, str] = Field(default_factory=dict)
    level: str | None = None
    valid: bool
    issues: list[RuleIssue] = Field(default_factory=list)
    origin: Literal["model", "floor"] = "model"  # floor: built from the observables alone, no model answer


class SimilarRule(BaseModel):
    rule_id: str
    title: str = ""
    path: str = ""
    score: float
    relation: str = ""  # equivalent | subset | superset | overlap
    verdict: str = ""  # what this match alone would make the rule


class NoveltyResult(BaseModel):
    rule_id: str
    verdict: Literal["duplicate", "similar", "novel"]
    reason: str = ""
    top: list[SimilarRule] = Field(default_factory=list)
