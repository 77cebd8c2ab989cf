"""The Sigma review queue for the web: the pipeline's ReviewQueue, plus the closest SigmaHQ rule's text
(for the side-by-side view), live validation and downloads of the export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctistudio.config import Settings
from ctistudio.web.context import AppContext
from ctistudio.web.offload import VALIDATE_TIMEOUT, off_loop

MAX_RULE_BYTES = 100_000
QueueState = Literal["queued", "approved", "rejected", "all"]
Target = Literal["splunk", "elastic", "esql", "eql"]


class RuleText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yaml: str = Field(min_length=1, max_length=MAX_RULE_BYTES)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


class ClosestRule(BaseModel):
    """The most similar SigmaHQ rule, with its text when the corpus is on this machine."""

    rule_id: str = ""
    title: str = ""
    path: str = ""
    score: float | None = None
    relation: str = ""
    yaml: str | None = None
    note: str = ""


class RuleDetail(BaseModel):
    rule: Any  # ctistudio.pipeline.review.RuleView, with its YAML
    closest: ClosestRule | None


def queue(ctx: AppContext) -> Any:
    return ctx.pipeline().queue


def list_queue(ctx: AppContext, state: QueueState) -> list[Any]:
    if state == "queued":
        return queue(ctx).list()
    if state == "all":
        return queue(ctx).list(everything=True)
    return queue(ctx).list(state=state)


def rule_detail(ctx: AppContext, rule_id: int) -> RuleDetail:
    rule = queue(ctx).show(rule_id)
    closest = closest_rule(ctx.settings(), rule.similar[0]) if rule.similar else None
    return RuleDetail(rule=rule, closest=closest)


def closest_rule(settings: Settings, entry: dict[str, Any]) -> ClosestRule:
    """The entry's SigmaHQ rule, read only from inside CTISTUDIO_SIGMA_RULES_DIR (no path escapes)."""
    known = {k: entry[k] for k in ("rule_id", "title", "path", "score", "relation") if entry.get(k) is not None}
    closest = ClosestRule(**{k: v if k == "score" else str(v) for k, v in known.items()})
    root = settings.sigma_rules_dir
    if not closest.path:
        closest.note = "the similarity result names no file"
    elif root is None:
        closest.note = "set CTISTUDIO_SIGMA_RULES_DIR to the SigmaHQ rules folder to see the rule's text"
    else:
        base = root.expanduser().resolve()
        candidate = Path(closest.path)
        candidate = (candidate if candidate.is_absolute() else base / candidate).resolve()
        if not candidate.is_relative_to(base) or not candidate.is_file():
            closest.note = f"{closest.path} is not in {base}"
        else:
            closest.yaml = candidate.read_text(encoding="utf-8", errors="replace")[:MAX_RULE_BYTES]
    return closest


def validate_yaml(yaml_text: str) -> Any:
    """The validation of a submitted rule; an alias bomb or an oversized text is refused (400) first."""
    from ctistudio.sigma import validate_rule
    from ctistudio.sigma.rule_yaml import check_rule_text

    check_rule_text(yaml_text)
    return validate_rule(yaml_text)


async def validate_off_loop(yaml_text: str) -> Any:
    """:func:`validate_yaml` in a worker thread with a time limit (the event loop keeps serving)."""
    return await off_loop(validate_yaml, yaml_text, timeout=VALIDATE_TIMEOUT, what="validating the rule")


async def edit_rule(ctx: AppContext, rule_id: int, yaml_text: str) -> Any:
    """Replace a rule's YAML (refused with 400, the stored rule unchanged, when over the YAML limits)."""
    from ctistudio.sigma.rule_yaml import check_rule_text

    review = queue(ctx)
    check_rule_text(yaml_text)
    return await off_loop(review.edit, rule_id, yaml_text)


def export_approved(ctx: AppContext, fmt: Literal["zip", "yaml"]) -> tuple[bytes, str, str]:
    """Approved rules as a zip of YAML files or one multi-document YAML: ``(body, media type, file name)``."""
    with tempfile.TemporaryDirectory(prefix="ctistudio-export-") as tmp:
        if fmt == "zip":
            target = Path(tmp) / "ctistudio-approved-rules.zip"
            queue(ctx).export(target)
            return target.read_bytes(), "application/zip", target.name
        written = [Path(p) for p in queue(ctx).export(Path(tmp) / "rules")]
        body = "\n---\n".join(p.read_text(encoding="utf-8").strip() for p in sorted(written)) + "\n"
        return body.encode(), "application/yaml", "ctistudio-approved-rules.yml"
