"""The review queue: valid rules that are novel or similar (or not yet checked) wait for a reviewer.

Actions: approve, reject, edit (the new YAML is validated again, and judged again for novelty), export the
approved rules as YAML files or one zip, convert a rule to Splunk or Elastic queries.
"""

from __future__ import annotations

import builtins  # ReviewQueue.list shadows the built-in in the class body's annotations
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.errors import InvalidInput
from ctistudio.pipeline.novelty import NoveltyJudge
from ctistudio.sigma import Conversion, convert, validate_rule
from ctistudio.store import Store
from ctistudio.store.models import SigmaRule
from ctistudio.store.rules import get_rule, list_rules, review_rule, rule_counts, set_rule_novelty, update_rule_yaml


class RuleView(BaseModel):
    """A generated rule as lists and the web app show it."""

    id: int
    run_id: int | None
    article_id: int | None
    rule_uuid: str | None
    title: str
    logsource: dict[str, Any]
    level: str | None
    valid: bool
    origin: str = "model"  # model | floor (built from the observables alone: no usable model answer)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    repair_rounds: int = 0
    verdict: str | None  # duplicate | similar | novel | None (not checked)
    similar: list[dict[str, Any]] = Field(default_factory=list)
    review_state: str  # pending | approved | rejected
    reviewer_note: str | None = None
    created_at: datetime
    yaml: str | None = None


def rule_view(rule: SigmaRule, *, with_yaml: bool = False) -> RuleView:
    return RuleView(
        id=rule.id,
        run_id=rule.run_id,
        article_id=rule.article_id,
        rule_uuid=rule.rule_uuid,
        title=rule.title,
        logsource=dict(rule.logsource or {}),
        level=rule.level,
        valid=rule.validation_status == "valid",
        origin=str((rule.extra or {}).get("origin") or "model"),
        errors=list(rule.validation_errors or []),
        repair_rounds=rule.repair_rounds,
        verdict=rule.verdict,
        similar=list(rule.similarity or []),
        review_state=rule.review_state,
        reviewer_note=rule.reviewer_note,
        created_at=rule.created_at,
        yaml=rule.yaml if with_yaml else None,
    )


def export_name(rule: SigmaRule) -> str:
    """``lsass_dump_via_comsvcs_minidump_1a2b3c4d.yml``: the title, then the rule id's first 8 characters."""
    slug = re.sub(r"[^a-z0-9]+", "_", rule.title.lower()).strip("_")[:80] or "rule"
    return f"{slug}_{(rule.rule_uuid or str(rule.id))[:8]}.yml"


class ReviewQueue:
    """Queue actions over the store (and the novelty judge, to judge edited rules again)."""

    def __init__(self, store: Store, novelty: NoveltyJudge | None = None) -> None:
        self.store = store
        self.novelty = novelty

    def list(
        self,
        *,
        everything: bool = False,
        state: str | None = None,
        verdict: str | None = None,
        run_id: int | None = None,
    ) -> list[RuleView]:
        with self.store.session() as session:
            rules = list_rules(
                session,
                queued_only=not everything and state is None and verdict is None,
                review_state=state,
                verdict=verdict,
                run_id=run_id,
            )
            return [rule_view(r) for r in rules]

    def counts(self) -> dict[str, int]:
        with self.store.session() as session:
            return rule_counts(session)

    def show(self, rule_id: int) -> RuleView:
        with self.store.session() as session:
            return rule_view(get_rule(session, rule_id), with_yaml=True)

    def approve(self, rule_id: int, note: str | None = None) -> RuleView:
        with self.store.session() as session:
            return rule_view(review_rule(session, rule_id, "approved", note=note))

    def reject(self, rule_id: int, note: str | None = None) -> RuleView:
        with self.store.session() as session:
            return rule_view(review_rule(session, rule_id, "rejected", note=note))

    def edit(self, rule_id: int, yaml_text: str) -> RuleView:
        """Replace the rule's YAML; it is validated (every issue kept) and, when valid, judged again."""
        result = validate_rule(yaml_text)
        rule = result.rule or {}
        logsource = rule.get("logsource") if isinstance(rule.get("logsource"), dict) else {}
        verdict = None
        if result.valid and self.novelty is not None:
            verdict = self.novelty.judge(yaml_text)
        with self.store.session() as session:
            updated = update_rule_yaml(
                session,
                rule_id,
                yaml=yaml_text,
                title=str(rule.get("title") or ""),
                logsource=dict(logsource or {}),
                level=str(rule["level"]) if rule.get("level") else None,
                valid=result.valid,
                errors=[i.model_dump() for i in result.errors],
            )
            if verdict is not None:
                set_rule_novelty(session, rule_id, verdict.verdict, [m.model_dump() for m in verdict.top])
            return rule_view(updated, with_yaml=True)

    def _approved(self, rule_ids: builtins.list[int] | None) -> builtins.list[SigmaRule]:
        with self.store.session() as session:
            if rule_ids:
                rules = [get_rule(session, i) for i in rule_ids]
                refused = [r.id for r in rules if r.review_state != "approved"]
                if refused:
                    raise InvalidInput(
                        f"rule(s) {', '.join(map(str, refused))} are not approved",
                        fix="Approve them first: `ctistudio queue approve ID`.",
                    )
                return rules
            return list_rules(session, queued_only=False, review_state="approved", limit=100_000)

    def export(self, destination: Path, *, rule_ids: builtins.list[int] | None = None) -> builtins.list[str]:
        """Write the approved rules as ``.yml`` files into a folder, or into a ``.zip`` when it ends so."""
        rules = self._approved(rule_ids)
        if not rules:
            raise InvalidInput(
                "there are no approved rules to export", fix="Approve rules: `ctistudio queue approve ID`."
            )
        destination = Path(destination)
        names = [export_name(r) for r in rules]
        if destination.suffix.lower() == ".zip":
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, rule in zip(names, rules, strict=True):
                    archive.writestr(name, rule.yaml)
            return [f"{destination}:{name}" for name in names]
        destination.mkdir(parents=True, exist_ok=True)
        for name, rule in zip(names, rules, strict=True):
            (destination / name).write_text(rule.yaml, encoding="utf-8")
        return [str(destination / name) for name in names]

    def convert(self, rule_id: int, target: str) -> Conversion:
        """The rule as ``target`` queries (``splunk``, ``elastic``, ``esql``, ``eql``)."""
        with self.store.session() as session:
            rule = get_rule(session, rule_id)
            text = rule.yaml
        return convert(text, target)
