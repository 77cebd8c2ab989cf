"""What an export holds, read from the store: articles, the observables their runs kept, and Sigma rules.

Three selections, the same for STIX, MISP, the IOC list and the Navigator layer:

- ``article``: the article, the observables of its latest run that kept any, and its valid rules that are
  neither rejected nor duplicates of a SigmaHQ rule;
- ``run``: one run's observables and its valid rules (same filter);
- ``approved``: every approved rule, with the articles and run observables it came from.

The values are plain typed models, so the writers never touch the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ctistudio.errors import InvalidInput
from ctistudio.safe_yaml import load_yaml
from ctistudio.sigma.rule_yaml import RULE_LIMITS
from ctistudio.store import Store
from ctistudio.store.articles import get_article
from ctistudio.store.models import Observable, PipelineRun, SigmaRule
from ctistudio.store.rules import list_rules
from ctistudio.store.runs import get_run, run_observables


class ExportArticle(BaseModel):
    id: int
    title: str
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    created_at: datetime


class ExportObservable(BaseModel):
    article_id: int
    run_id: int | None
    kind: str  # cmdline | lineage | registry | service | scheduled_task | network | hunt_query | hash
    value: str
    attributes: dict[str, Any] = Field(default_factory=dict)  # network kind, parent/child, query language
    evidence: str | None = None


class ExportRule(BaseModel):
    id: int
    rule_uuid: str | None
    article_id: int | None
    run_id: int | None
    title: str
    description: str | None = None
    yaml: str
    level: str | None = None
    logsource: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    review_state: str
    created_at: datetime

    @property
    def techniques(self) -> list[str]:
        """ATT&CK technique IDs among the tags (``attack.t1218.005`` → ``T1218.005``)."""
        out = []
        for tag in self.tags:
            name = tag.lower().removeprefix("attack.")
            if tag.lower().startswith("attack.t") and name[1:5].isdigit():
                out.append(name.upper())
        return list(dict.fromkeys(out))


class ExportSet(BaseModel):
    """Everything one export writes, and a name for it (the report or event title)."""

    name: str
    scope: str  # article | run | approved
    articles: list[ExportArticle]
    observables: list[ExportObservable] = Field(default_factory=list)
    rules: list[ExportRule] = Field(default_factory=list)

    def article(self, article_id: int | None) -> ExportArticle | None:
        return next((a for a in self.articles if a.id == article_id), None)


def collect(
    store: Store, *, article_id: int | None = None, run_id: int | None = None, approved: bool = False
) -> ExportSet:
    """The export of exactly one of: an article, a run, or every approved rule."""
    if sum((article_id is not None, run_id is not None, approved)) != 1:
        raise InvalidInput(
            "say what to export: one of --article N, --run N or --approved",
            fix="e.g. `ctistudio export stix --article 1` (see `ctistudio articles list`).",
        )
    with store.session() as session:
        if run_id is not None:
            return _run_set(session, run_id)
        if article_id is not None:
            return _article_set(session, article_id)
        return _approved_set(session)


def _article_set(session: Session, article_id: int) -> ExportSet:
    article = get_article(session, article_id)
    runs = list(session.scalars(select(PipelineRun).where(PipelineRun.article_id == article_id)))
    if not runs:
        raise InvalidInput(
            f"article {article_id} has no pipeline run yet, so there is nothing to export",
            fix=f"Run the pipeline first: `ctistudio run --article {article_id}`.",
        )
    observables: list[Observable] = []
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        observables = run_observables(session, run.id)
        if observables:
            break
    rules = session.scalars(select(SigmaRule).where(SigmaRule.article_id == article_id).order_by(SigmaRule.id)).all()
    return ExportSet(
        name=article.title,
        scope="article",
        articles=[_article(article)],
        observables=[_observable(o) for o in observables],
        rules=[_rule(r) for r in rules if _exportable(r)],
    )


def _run_set(session: Session, run_id: int) -> ExportSet:
    run = get_run(session, run_id)
    article = get_article(session, run.article_id)
    rules = session.scalars(select(SigmaRule).where(SigmaRule.run_id == run_id).order_by(SigmaRule.id)).all()
    return ExportSet(
        name=f"{article.title} (run {run_id})",
        scope="run",
        articles=[_article(article)],
        observables=[_observable(o) for o in run_observables(session, run_id)],
        rules=[_rule(r) for r in rules if _exportable(r)],
    )


def _approved_set(session: Session) -> ExportSet:
    rules = list_rules(session, queued_only=False, review_state="approved", limit=100_000)
    if not rules:
        raise InvalidInput(
            "there are no approved rules to export",
            fix="Review the queue and approve rules: `ctistudio queue list`, then `ctistudio queue approve ID`.",
        )
    rules.sort(key=lambda r: r.id)
    article_ids = list(dict.fromkeys(r.article_id for r in rules if r.article_id is not None))
    run_ids = list(dict.fromkeys(r.run_id for r in rules if r.run_id is not None))
    observables = [_observable(o) for run in run_ids for o in run_observables(session, run)]
    return ExportSet(
        name=f"ctistudio: {len(rules)} approved Sigma rule(s)",
        scope="approved",
        articles=[_article(get_article(session, a)) for a in article_ids],
        observables=observables,
        rules=[_rule(r) for r in rules],
    )


def collect_rules(store: Store, *, approved_only: bool = True) -> list[ExportRule]:
    """The approved rules (or every reviewable one: valid, neither rejected nor a duplicate), oldest first."""
    with store.session() as session:
        query = select(SigmaRule).order_by(SigmaRule.id)
        if approved_only:
            query = query.where(SigmaRule.review_state == "approved")
        return [_rule(r) for r in session.scalars(query) if _exportable(r)]


def _exportable(rule: SigmaRule) -> bool:
    return rule.validation_status == "valid" and rule.review_state != "rejected" and rule.verdict != "duplicate"


def _article(article: Any) -> ExportArticle:
    return ExportArticle(
        id=article.id,
        title=article.title,
        url=article.url,
        author=article.author,
        published_at=article.published_at,
        created_at=article.created_at,
    )


def _observable(row: Observable) -> ExportObservable:
    return ExportObservable(
        article_id=row.article_id,
        run_id=row.run_id,
        kind=row.kind,
        value=row.value,
        attributes=dict(row.extra or {}),
        evidence=row.source_evidence,
    )


def _rule(row: SigmaRule) -> ExportRule:
    parsed = parse_rule(row.yaml)
    tags = parsed.get("tags") if isinstance(parsed.get("tags"), list) else []
    description = parsed.get("description")
    return ExportRule(
        id=row.id,
        rule_uuid=row.rule_uuid,
        article_id=row.article_id,
        run_id=row.run_id,
        title=row.title,
        description=str(description) if description else None,
        yaml=row.yaml,
        level=row.level,
        logsource=dict(row.logsource or {}),
        tags=[str(t) for t in tags],
        review_state=row.review_state,
        created_at=row.created_at,
    )


def parse_rule(text: str) -> dict[str, Any]:
    """A stored rule's YAML as a mapping (an unreadable one as an empty mapping: it was validated before)."""
    try:
        loaded = load_yaml(text, limits=RULE_LIMITS, what="the rule")
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
