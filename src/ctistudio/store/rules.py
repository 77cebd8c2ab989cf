"""Generated Sigma rules: storing a run's batch, novelty verdicts, the review queue and its actions.

Rules are keyed by their own ``id:`` (``rule_uuid``) within a run, so storing a run's batch again updates
the rules in place (re-running the sigma step is idempotent) and never touches a rule a reviewer already
approved or rejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from ctistudio.errors import InvalidInput, NotFound
from ctistudio.store.models import REVIEW_STATES, VERDICTS, SigmaRule
from ctistudio.store.types import utcnow

QUEUED_VERDICTS = ("novel", "similar")  # and None: not checked (no SigmaHQ index), still worth a review


@dataclass
class NewRule:
    rule_uuid: str
    title: str
    yaml: str
    logsource: dict[str, Any]
    level: str | None
    valid: bool
    errors: list[dict[str, Any]]
    repair_rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def store_run_rules(session: Session, run_id: int, article_id: int, rules: Iterable[NewRule]) -> list[SigmaRule]:
    """Upsert a run's rules by ``rule_uuid``; unreviewed rules of the run not in ``rules`` are removed."""
    existing = {r.rule_uuid: r for r in session.scalars(select(SigmaRule).where(SigmaRule.run_id == run_id))}
    kept: list[SigmaRule] = []
    for new in rules:
        row = existing.pop(new.rule_uuid, None)
        if row is not None and row.review_state != "pending":
            kept.append(row)  # a reviewer's decision wins over a re-run
            continue
        if row is None:
            row = SigmaRule(run_id=run_id, article_id=article_id, rule_uuid=new.rule_uuid)
            session.add(row)
        row.title = new.title[:500] or "(untitled rule)"
        row.yaml = new.yaml
        row.logsource = new.logsource
        row.level = new.level
        row.validation_status = "valid" if new.valid else "invalid"
        row.validation_errors = new.errors
        row.repair_rounds = new.repair_rounds
        row.extra = new.extra
        row.verdict = None
        row.similarity = []
        kept.append(row)
    stale = [r.id for r in existing.values() if r.review_state == "pending"]
    if stale:
        session.execute(delete(SigmaRule).where(SigmaRule.id.in_(stale)))
    session.flush()
    return kept


def get_rule(session: Session, rule_id: int) -> SigmaRule:
    rule = session.get(SigmaRule, rule_id)
    if rule is None:
        raise NotFound(f"no generated Sigma rule with id {rule_id}", fix="See `ctistudio queue list --all`.")
    return rule


def run_rules(session: Session, run_id: int) -> list[SigmaRule]:
    return list(session.scalars(select(SigmaRule).where(SigmaRule.run_id == run_id).order_by(SigmaRule.id)))


def set_rule_novelty(session: Session, rule_id: int, verdict: str | None, similarity: list[dict[str, Any]]) -> None:
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; allowed: {', '.join(VERDICTS)}")
    rule = get_rule(session, rule_id)
    rule.verdict = verdict
    rule.similarity = similarity
    session.flush()


def _queued() -> Any:
    return and_(
        SigmaRule.review_state == "pending",
        SigmaRule.validation_status == "valid",
        or_(SigmaRule.verdict.is_(None), SigmaRule.verdict.in_(QUEUED_VERDICTS)),
    )


def list_rules(
    session: Session,
    *,
    queued_only: bool = True,
    review_state: str | None = None,
    verdict: str | None = None,
    run_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[SigmaRule]:
    """Rules, newest first. ``queued_only``: the review queue (valid, pending, not a duplicate)."""
    query = select(SigmaRule).order_by(SigmaRule.id.desc())
    if queued_only:
        query = query.where(_queued())
    if review_state:
        query = query.where(SigmaRule.review_state == review_state)
    if verdict:
        query = query.where(SigmaRule.verdict == verdict)
    if run_id is not None:
        query = query.where(SigmaRule.run_id == run_id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def rule_counts(session: Session) -> dict[str, int]:
    """How many rules are queued, approved, rejected, invalid and duplicates."""
    queued = select(func.count()).select_from(SigmaRule).where(_queued())
    out = {"queued": int(session.scalar(queued) or 0)}
    for state in ("approved", "rejected"):
        query = select(func.count()).select_from(SigmaRule).where(SigmaRule.review_state == state)
        out[state] = int(session.scalar(query) or 0)
    invalid = select(func.count()).select_from(SigmaRule).where(SigmaRule.validation_status == "invalid")
    duplicate = select(func.count()).select_from(SigmaRule).where(SigmaRule.verdict == "duplicate")
    out["invalid"] = int(session.scalar(invalid) or 0)
    out["duplicate"] = int(session.scalar(duplicate) or 0)
    return out


def review_rule(session: Session, rule_id: int, state: str, *, note: str | None = None) -> SigmaRule:
    """Approve or reject (or send back to ``pending``). Only a valid rule can be approved."""
    if state not in REVIEW_STATES:
        raise ValueError(f"unknown review state {state!r}; allowed: {', '.join(REVIEW_STATES)}")
    rule = get_rule(session, rule_id)
    if state == "approved" and rule.validation_status != "valid":
        raise InvalidInput(
            f"rule {rule_id} is not valid ({len(rule.validation_errors or [])} issue(s)), so it cannot be approved",
            fix=f"Fix it first: `ctistudio queue edit {rule_id}` (the edit is re-validated).",
        )
    rule.review_state = state
    rule.reviewer_note = note
    rule.reviewed_at = utcnow() if state != "pending" else None
    session.flush()
    return rule


def update_rule_yaml(
    session: Session,
    rule_id: int,
    *,
    yaml: str,
    title: str,
    logsource: dict[str, Any],
    level: str | None,
    valid: bool,
    errors: list[dict[str, Any]],
) -> SigmaRule:
    """Replace a rule's YAML after an edit (the caller validated it); the verdict must be computed again."""
    rule = get_rule(session, rule_id)
    rule.yaml = yaml
    rule.title = title[:500] or rule.title
    rule.logsource = logsource
    rule.level = level
    rule.validation_status = "valid" if valid else "invalid"
    rule.validation_errors = errors
    rule.verdict = None
    rule.similarity = []
    rule.review_state = "pending"
    rule.reviewed_at = None
    rule.extra = {**(rule.extra or {}), "edited": True}
    session.flush()
    return rule
