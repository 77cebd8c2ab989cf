"""Sigma generation: observables grouped by log source → rules → pySigma validation ⇄ repair.

- One ``sigma`` call per log-source group (process creation, registry, service installs, network …), all
  groups in parallel; the model writes YAML, the format every Sigma rule it has seen is written in.
- The fields a model should not invent are set here, deterministically: ``id`` (a UUID derived from the run,
  the group and the rule's position, so re-running the step yields the same ids), ``status``, ``author``,
  ``date``, ``references`` (the article) and ``logsource`` (the group's).
- Each rule is validated with :func:`ctistudio.sigma.validate_rule`; an invalid one is sent back with its
  FULL YAML and EVERY issue, at most :data:`MAX_REPAIR_ROUNDS` times. A rule still invalid after that is
  kept, marked invalid, with its last issues and the history of the earlier ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ctistudio.llm import Gateway, LLMError
from ctistudio.pipeline.models import GeneratedRule, Observable, RuleIssue
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.usage import StepUsage
from ctistudio.sigma import ValidationResult, validate_rule
from ctistudio.sigma.rule_yaml import dump_rule, load_documents

log = logging.getLogger(__name__)

MAX_REPAIR_ROUNDS = 3
MAX_RULES_PER_GROUP = 4
MAX_OBSERVABLES_PER_GROUP = 20
SIGMA_MAX_TOKENS = 1200  # ≤ 4 rules of ~250 tokens
REPAIR_MAX_TOKENS = 700  # one rule
AUTHOR = "ctistudio (generated, review before use)"
_RULE_NAMESPACE = uuid.UUID("5b1f0e0c-7f55-4c38-a2f1-6f1d2b8e9a11")

_LINUX_HINTS = re.compile(
    r"^(?:sudo\s|/(?:bin|usr|tmp|etc|var|opt|dev)/|bash\b|sh\s|curl\s|wget\s|chmod\b|crontab\b|systemctl\b|nohup\b)"
)
_MACOS_HINTS = re.compile(r"osascript|launchctl|/Library/|/Applications/|\bdefaults write\b")


@dataclass(frozen=True)
class LogSourceGroup:
    """A Sigma log source and the observables that belong to it."""

    key: str  # "windows/process_creation", "windows/system", "proxy" …
    logsource: dict[str, str]
    observables: tuple[Observable, ...]


def _product_of_command(text: str) -> str:
    stripped = text.strip().strip("\"'")
    if _MACOS_HINTS.search(stripped):
        return "macos"
    if _LINUX_HINTS.search(stripped) and ".exe" not in stripped.lower() and "\\" not in stripped:
        return "linux"
    return "windows"


def logsource_of(observable: Observable) -> tuple[str, dict[str, str]] | None:
    """The log source a rule for ``observable`` is written against (``None``: not Sigma material)."""
    kind = observable.kind
    if kind in ("cmdline", "scheduled_task"):
        product = _product_of_command(observable.source_evidence if kind == "scheduled_task" else observable.value)
        return f"{product}/process_creation", {"category": "process_creation", "product": product}
    if kind == "lineage":
        both = observable.attributes.get("parent", "") + observable.attributes.get("child", "")
        product = "windows" if ".exe" in both.lower() or "\\" in both else _product_of_command(both)
        return f"{product}/process_creation", {"category": "process_creation", "product": product}
    if kind == "registry":
        return "windows/registry_set", {"category": "registry_set", "product": "windows"}
    if kind == "service":
        return "windows/system", {"product": "windows", "service": "system"}
    if kind == "network":
        network_kind = observable.attributes.get("kind", "")
        if network_kind == "domain":
            return "windows/dns_query", {"category": "dns_query", "product": "windows"}
        if network_kind == "url":
            return "proxy", {"category": "proxy"}
        return "windows/network_connection", {"category": "network_connection", "product": "windows"}
    return None  # hashes and hunt queries are context, not rule material


def group_observables(observables: list[Observable]) -> list[LogSourceGroup]:
    """Observables by log source, the most confident (model-found first) up to the group's limit."""
    groups: dict[str, tuple[dict[str, str], list[Observable]]] = {}
    for observable in observables:
        found = logsource_of(observable)
        if found is None:
            continue
        key, logsource = found
        groups.setdefault(key, (logsource, []))[1].append(observable)
    out = []
    for key, (logsource, members) in sorted(groups.items()):
        members.sort(key=lambda o: (o.origin != "model", -o.confidence))
        out.append(LogSourceGroup(key, logsource, tuple(members[:MAX_OBSERVABLES_PER_GROUP])))
    return out


def group_prompt(group: LogSourceGroup, *, title: str, url: str | None, queries: list[Observable]) -> str:
    source = ", ".join(f"{k}: {v}" for k, v in group.logsource.items())
    lines = [f"Log source: {source}", f"Article: {title}" + (f" ({url})" if url else ""), "", "Observables:"]
    for number, o in enumerate(group.observables, 1):
        extra = "".join(f", {k}: {v}" for k, v in o.attributes.items())
        lines.append(f"{number}. [{o.kind}{extra}] {o.value}")
        if o.source_evidence != o.value:
            lines.append(f"   evidence: {' '.join(o.source_evidence.split())[:400]}")
    if queries:
        lines += ["", "Hunt queries the article gives (adapt their logic where it fits this log source):"]
        lines += [f"- ({q.attributes.get('language', 'query')}) {' '.join(q.value.split())[:400]}" for q in queries[:3]]
    return "\n".join(lines)


# -- YAML from the model's answer --------------------------------------------------------------------------
_RULE_KEY = re.compile(r"(?m)^\s*(?:title|detection|logsource)\s*:")
_FENCED = re.compile(r"```(?:ya?ml)?[^\n]*\n(.*?)```", re.S | re.I)


def split_rules(answer: str) -> list[str]:
    """The YAML documents of an answer (fences removed, split on ``---`` lines); prose is not a rule."""
    fenced = _FENCED.findall(answer)
    text = "\n---\n".join(fenced) if fenced else answer
    docs = [d.strip("\n") for d in re.split(r"(?m)^---\s*$", text)]
    return [d for d in docs if _RULE_KEY.search(d)]


def finalise(
    text: str, *, rule_id: str, logsource: Mapping[str, str], reference: str, date: str
) -> tuple[str, dict[str, Any] | None]:
    """``text`` with the deterministic fields set; returned unchanged when it is not a readable mapping."""
    try:
        docs = [d for d in load_documents(text) if d is not None]
    except yaml.YAMLError:
        return text, None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        return text, None
    rule = dict(docs[0])
    rule.update(
        id=rule_id,
        status="experimental",
        author=AUTHOR,
        date=date,
        references=[reference],
        logsource=dict(logsource),
    )
    rule.pop("modified", None)
    return dump_rule(rule), rule


def issues_of(result: ValidationResult) -> list[RuleIssue]:
    return [
        RuleIssue(severity=i.severity, code=i.code, message=i.message, location=i.location, line=i.line)
        for i in result.issues
    ]


@dataclass
class RuleContext:
    """What generation needs to know about the run and the article."""

    id_seed: str  # e.g. "run-17": rule ids are derived from it
    title: str
    reference: str  # the article's URL (or a description when it has none)
    date: str  # YYYY-MM-DD
    provider: str | None = None


def rule_uuid(seed: str, group: str, index: int) -> str:
    return str(uuid.uuid5(_RULE_NAMESPACE, f"{seed}/{group}/{index}"))


async def _repair_loop(
    gateway: Gateway, yaml_text: str, group: LogSourceGroup, rule_id: str, ctx: RuleContext, usage: StepUsage
) -> GeneratedRule:
    fixed = {"rule_id": rule_id, "logsource": group.logsource, "reference": ctx.reference, "date": ctx.date}
    text, _ = finalise(yaml_text, **fixed)
    result = validate_rule(text)
    history: list[list[RuleIssue]] = []
    rounds = 0
    while not result.valid and rounds < MAX_REPAIR_ROUNDS:
        rounds += 1
        history.append(issues_of(result))
        prompt = load_prompt("sigma_repair").render(count=str(len(result.issues)), issues=result.feedback(), yaml=text)
        try:
            answer = await gateway.chat(
                [
                    {"role": "system", "content": load_prompt("sigma_generate").body},
                    {"role": "user", "content": prompt},
                ],
                task="sigma",
                provider=ctx.provider,
                max_tokens=REPAIR_MAX_TOKENS,
            )
        except LLMError as error:
            usage.add_failure()
            log.warning("sigma repair of %s failed: %s", rule_id, error.message)
            break
        usage.add(answer)
        candidates = split_rules(answer.text)
        if candidates:
            text, _ = finalise(candidates[0], **fixed)
            result = validate_rule(text)
    title = (result.rule or {}).get("title", "") if result.rule else ""
    return GeneratedRule(
        rule_id=rule_id,
        group=group.key,
        yaml=text,
        title=str(title)[:500],
        valid=result.valid,
        issues=issues_of(result),
        repair_rounds=rounds,
        history=history,
        logsource=dict(group.logsource),
        level=str((result.rule or {}).get("level") or "") or None,
    )


async def _generate_group(
    gateway: Gateway, group: LogSourceGroup, ctx: RuleContext, queries: list[Observable], usage: StepUsage
) -> tuple[list[GeneratedRule], str | None]:
    try:
        answer = await gateway.chat(
            [
                {"role": "system", "content": load_prompt("sigma_generate").body},
                {"role": "user", "content": group_prompt(group, title=ctx.title, url=ctx.reference, queries=queries)},
            ],
            task="sigma",
            provider=ctx.provider,
            max_tokens=SIGMA_MAX_TOKENS,
        )
    except LLMError as error:
        usage.add_failure()
        return [], f"{group.key}: {error.message}"
    usage.add(answer)
    docs = split_rules(answer.text)[:MAX_RULES_PER_GROUP]
    if not docs:
        return [], f"{group.key}: the model wrote no YAML rule"
    rules = await asyncio.gather(
        *(
            _repair_loop(gateway, doc, group, rule_uuid(ctx.id_seed, group.key, n), ctx, usage)
            for n, doc in enumerate(docs)
        )
    )
    return list(rules), None


async def generate_rules(
    gateway: Gateway, observables: list[Observable], ctx: RuleContext
) -> tuple[list[GeneratedRule], list[str], StepUsage]:
    """Rules for every log-source group (in parallel), each validated and repaired; and the groups' errors."""
    usage = StepUsage()
    queries = [o for o in observables if o.kind == "hunt_query"]
    groups = group_observables(observables)
    results = await asyncio.gather(*(_generate_group(gateway, g, ctx, queries, usage) for g in groups))
    rules = [rule for group_rules, _ in results for rule in group_rules]
    errors = [error for _, error in results if error]
    return rules, errors, usage
