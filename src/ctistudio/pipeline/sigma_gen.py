"""Sigma generation: observables grouped by log source → a constrained answer → rules rendered by code.

- One ``sigma`` call per log-source group (process creation, registry, service installs, network …), all
  groups in parallel. The model does not write YAML: it fills the JSON Schema of
  :mod:`ctistudio.pipeline.rule_draft`, which the server enforces while decoding — fields of the log source,
  modifiers those fields take, values taken from the group's observables, ATT&CK tags that exist.
- Code renders each answer into a rule (:mod:`ctistudio.pipeline.rule_render`): ``id`` (a UUID derived from
  the run, the group and the rule's position, so re-running the step yields the same ids), ``status``,
  ``author``, ``date``, ``references`` and ``logsource`` are set here, the YAML is the project's own dump.
- pySigma still validates every rule. Any answer that fits the schema renders to a valid rule (a property
  test proves it over thousands of random answers), so there is no repair round to ask for: a rule pySigma
  refused anyway would be kept, marked invalid with its issues, and its group would get the floor's rules.
- The floor (:mod:`ctistudio.pipeline.rule_floor`): a group whose model answer is unusable (no answer,
  schema-invalid after the gateway's repair, nothing specific enough) — or that ends without a valid rule —
  gets rules built from its observables alone, marked ``origin: floor``. No model, no rules is never the
  outcome for a group that has something to match.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ctistudio.llm import Gateway, LLMError
from ctistudio.pipeline.attack_tags import tag_choices
from ctistudio.pipeline.models import GeneratedRule, Observable, RuleIssue
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.rule_draft import (
    DetectionItem,
    RuleDraft,
    answer_schema,
    drafts_from_answer,
    false_positive_choices,
    selection_key,
)
from ctistudio.pipeline.rule_floor import floor_drafts
from ctistudio.pipeline.rule_render import RuleFacts, render_rule, render_yaml
from ctistudio.pipeline.rule_values import ObservableChoices, observable_choices
from ctistudio.pipeline.usage import StepUsage
from ctistudio.sigma import ValidationResult, validate_rule
from ctistudio.sigma.taxonomy import CONTAINS_ALL, ENDSWITH, LOG_SOURCES, LogSourceSpec, log_source

log = logging.getLogger(__name__)

SIGMA_PROMPT = "sigma_generate"
MAX_OBSERVABLES_PER_GROUP = 20
SIGMA_MAX_TOKENS = 900  # ≤ 3 rules: ~60 tokens of prose and ~80 of chosen values each, with room to spare
_RULE_NAMESPACE = uuid.UUID("5b1f0e0c-7f55-4c38-a2f1-6f1d2b8e9a11")

_LINUX_HINTS = re.compile(
    r"^(?:sudo\s|/(?:bin|usr|tmp|etc|var|opt|dev)/|bash\b|sh\s|curl\s|wget\s|chmod\b|crontab\b|systemctl\b|nohup\b)"
)
_MACOS_HINTS = re.compile(r"osascript|launchctl|/Library/|/Applications/|\bdefaults write\b")


@dataclass(frozen=True)
class LogSourceGroup:
    """A Sigma log source and the observables that belong to it."""

    key: str  # "windows/process_creation", "windows/system", "proxy" … (a key of LOG_SOURCES)
    logsource: dict[str, str]
    observables: tuple[Observable, ...]

    @property
    def spec(self) -> LogSourceSpec:
        return log_source(self.key)


def _product_of_command(text: str) -> str:
    stripped = text.strip().strip("\"'")
    if _MACOS_HINTS.search(stripped):
        return "macos"
    if _LINUX_HINTS.search(stripped) and ".exe" not in stripped.lower() and "\\" not in stripped:
        return "linux"
    return "windows"


def logsource_key(observable: Observable) -> str | None:
    """The log source (a key of LOG_SOURCES) a rule for ``observable`` is written against; None: not Sigma
    material (hashes and hunt queries are context, not values a rule matches)."""
    kind = observable.kind
    if kind in ("cmdline", "scheduled_task"):
        product = _product_of_command(observable.source_evidence if kind == "scheduled_task" else observable.value)
        return f"{product}/process_creation"
    if kind == "lineage":
        both = observable.attributes.get("parent", "") + observable.attributes.get("child", "")
        product = "windows" if ".exe" in both.lower() or "\\" in both else _product_of_command(both)
        return f"{product}/process_creation"
    if kind == "registry":  # a deleted key or value is a registry_delete event, never a value set
        deleted = observable.attributes.get("operation") == "delete"
        return "windows/registry_delete" if deleted else "windows/registry_set"
    if kind == "service":
        return "windows/system"
    if kind == "network":
        network_kind = observable.attributes.get("kind", "")
        if network_kind == "domain":
            return "windows/dns_query"
        if network_kind == "url":
            return "proxy"
        return "windows/network_connection"
    return None


def group_observables(observables: list[Observable]) -> list[LogSourceGroup]:
    """Observables by log source, the most confident (model-found first) up to the group's limit."""
    groups: dict[str, list[Observable]] = {}
    for observable in observables:
        key = logsource_key(observable)
        if key is not None:
            groups.setdefault(key, []).append(observable)
    out = []
    for key, members in sorted(groups.items()):
        members.sort(key=lambda o: (o.origin != "model", -o.confidence))
        out.append(LogSourceGroup(key, dict(LOG_SOURCES[key].logsource), tuple(members[:MAX_OBSERVABLES_PER_GROUP])))
    return out


# -- the request ----------------------------------------------------------------------------------------------
def relevant_queries(queries: list[Observable], offers: list[ObservableChoices]) -> list[Observable]:
    """The hunt queries that name one of the group's values (a query on process events says nothing about
    which DNS names belong together, and cost every group ~100 prompt tokens)."""
    values = {str(c.value).strip("\\/*").lower() for offer in offers for c in offer.values}
    values = {v for v in values if len(v) >= 4}
    return [q for q in queries if any(v in q.value.lower() for v in values)]


def group_prompt(
    group: LogSourceGroup, offers: list[ObservableChoices], tags: list[str], queries: list[Observable]
) -> str:
    """The group's message: the observables, each with the values a selection built from it may match.

    The article's title is not in it: a small model copied it as every rule's title."""
    source = ", ".join(f"{k}: {v}" for k, v in group.logsource.items())
    lines = [f"Log source: {source}", ""]
    # Each field's modifiers once, not under every observable: a fifth fewer prompt tokens in a big group.
    offered = [f for f in group.spec.fields if any(offer.of(f.name) for offer in offers)]
    lines.append("Fields and their modifiers: " + "; ".join(f"{f.name} [{', '.join(f.modifiers)}]" for f in offered))
    lines.append("Observables, each with the values a selection built from it may match (field: values):")
    for offer in offers:
        o = offer.observable
        extra = "".join(f", {k}: {v}" for k, v in o.attributes.items() if k != "command")
        lines.append(f"{offer.number}. [{o.kind}{extra}] {' '.join(o.value.split())[:300]}")
        for field_spec in offered:
            values = offer.of(field_spec.name)
            if values:
                shown = " | ".join(json.dumps(c.value, ensure_ascii=False) for c in values)
                lines.append(f"   {field_spec.name}: {shown}")
    lines += ["", f"ATT&CK tags you may use: {', '.join(tags)}"]
    lines.append(f"False positives you may name: {'; '.join(false_positive_choices(group.spec))}")
    queries = relevant_queries(queries, offers)
    if queries:
        lines += ["", "Hunt queries the article gives (their logic may guide which values belong together):"]
        lines += [f"- ({q.attributes.get('language', 'query')}) {' '.join(q.value.split())[:300]}" for q in queries[:3]]
    return "\n".join(lines)


def _instructions() -> dict[str, Any]:
    return {"role": "system", "content": load_prompt(SIGMA_PROMPT).body}


def _messages(user: str) -> list[dict[str, Any]]:
    # The instructions are the same for every group and article: first, so a prefix cache reuses them.
    return [_instructions(), {"role": "user", "content": user}]


# -- drafts → rules -------------------------------------------------------------------------------------------
# A short word or switch (`user`, `/add`, `-nop`): common in any command line, so never a selection alone.
_WEAK_VALUE = re.compile(r"[/-]{0,2}[A-Za-z]{1,7}")


def _only_weak_words(items: list[DetectionItem], spec: LogSourceSpec) -> bool:
    """``CommandLine|contains: user`` with no program: it would match a large share of all processes. Three
    or more required together (``contains|all: [-nop, hidden, bypass]``) are a signature, not a word."""
    if any((field := spec.field(i.field)) is not None and field.broad for i in items):
        return False
    if any(i.modifier == CONTAINS_ALL and len(i.values) >= 3 for i in items):
        return False
    return all(_WEAK_VALUE.fullmatch(str(value).strip()) for i in items for value in i.values)


def specific_draft(draft: RuleDraft, spec: LogSourceSpec) -> RuleDraft | None:
    """``draft`` without the selections that would match a whole program (see ``LogSourceSpec.is_specific``)
    or only short common words; None when none is left."""
    kept = [
        s for s in draft.selections if spec.is_specific({item.field for item in s}) and not _only_weak_words(s, spec)
    ]
    if not kept:
        return None
    return draft if len(kept) == len(draft.selections) else draft.model_copy(update={"selections": kept})


def _detection_key(draft: RuleDraft) -> str:
    return repr(sorted(selection_key(items) for items in draft.selections))


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
    article: str = ""  # the article's text: the ATT&CK technique ids it names become tag choices


def rule_uuid(seed: str, group: str, index: int) -> str:
    return str(uuid.uuid5(_RULE_NAMESPACE, f"{seed}/{group}/{index}"))


@dataclass(frozen=True)
class GroupRequest:
    """What the ``sigma`` call of one group sends: the messages and the answer schema built from its choices."""

    group: LogSourceGroup
    offers: list[ObservableChoices]
    tags: list[str]
    messages: list[dict[str, Any]]
    schema: dict[str, Any]


def group_request(group: LogSourceGroup, ctx: RuleContext, queries: list[Observable]) -> GroupRequest | None:
    """The request for ``group``; None when none of its observables can make a specific selection."""
    offers = observable_choices(group.spec, group.observables)
    if not offers:
        return None
    tags = tag_choices(ctx.article, group.observables, group.spec)
    prompt = group_prompt(group, offers, tags, queries)
    return GroupRequest(group, offers, tags, _messages(prompt), answer_schema(group.spec, offers, tags))


def usable_drafts(answer: Any, spec: LogSourceSpec) -> list[RuleDraft]:
    """The drafts of a schema-valid answer that match something specific, each detection once."""
    drafts, seen = [], set()
    for draft in drafts_from_answer(answer):
        specific = specific_draft(draft, spec)
        if specific is not None and _detection_key(specific) not in seen:
            seen.add(_detection_key(specific))
            drafts.append(specific)
    return drafts


def render_draft(draft: RuleDraft, group: LogSourceGroup, ctx: RuleContext, index: int) -> GeneratedRule | None:
    """The rule of ``draft`` as the pipeline stores it, validated by pySigma; None when it matches nothing."""
    facts = RuleFacts(rule_uuid(ctx.id_seed, group.key, index), ctx.reference, ctx.date)
    rule = render_rule(draft, group.spec, facts, article_title=ctx.title)
    if rule is None:
        return None
    text = render_yaml(rule)
    result = validate_rule(text)
    return GeneratedRule(
        rule_id=facts.rule_id,
        group=group.key,
        yaml=text,
        title=str(rule["title"])[:500],
        valid=result.valid,
        issues=issues_of(result),
        logsource=dict(group.logsource),
        level=str(rule["level"]),
        origin=draft.origin,
    )


def with_programs(answer: Any, offers: list[ObservableChoices]) -> Any:
    """The answer with the program's ``Image|endswith`` added to every selection that matches a command line's
    arguments without it. ``CommandLine|contains: COIm.jpg,init`` alone matches any process that mentions the
    file; SigmaHQ's rules, and the expected rules of the sigma eval, pair it with ``\\rundll32.exe``. The
    0.5B model left the program out of most such selections: a fact of the observable the selection names,
    so code adds it (a copy; the answer itself is left as the model gave it)."""
    if not isinstance(answer, dict):
        return answer
    images = {offer.number: next((c.value for c in offer.of("Image")), None) for offer in offers}
    answer = copy.deepcopy(answer)
    for rule in answer.get("rules") or []:
        for selection in rule.get("selections") or []:
            items = selection.get("items") or []
            fields = {item.get("field") for item in items}
            image = images.get(selection.get("observable"))
            if image and "CommandLine" in fields and "Image" not in fields:
                items.insert(0, {"field": "Image", "modifier": ENDSWITH, "values": [image]})
    return answer


async def _model_drafts(
    gateway: Gateway, request: GroupRequest, ctx: RuleContext, usage: StepUsage
) -> tuple[list[RuleDraft], str | None]:
    """The model's usable drafts, and why there are none when there are none."""
    try:
        answer = await gateway.chat(
            request.messages,
            task="sigma",
            provider=ctx.provider,
            schema=request.schema,
            schema_name="sigma_rules",
            max_tokens=SIGMA_MAX_TOKENS,
        )
    except LLMError as error:  # BadOutput (still schema-invalid after the gateway's repair) included
        usage.add_failure()
        return [], f"no usable model answer ({error.message})"
    usage.add(answer)
    drafts = usable_drafts(with_programs(answer.parsed, request.offers), request.group.spec)
    if not drafts:
        return [], "the model's answer matched nothing specific enough (a program alone, or nothing)"
    return drafts, None


async def _generate_group(
    gateway: Gateway | None, group: LogSourceGroup, ctx: RuleContext, queries: list[Observable], usage: StepUsage
) -> tuple[list[GeneratedRule], str | None]:
    """The group's rules and a note on what went wrong (None when the model's answer was used as is)."""
    request = group_request(group, ctx, queries)
    if request is None:
        return [], None
    drafts, note = await _model_drafts(gateway, request, ctx, usage) if gateway is not None else ([], None)
    rules = [r for r in (render_draft(d, group, ctx, n) for n, d in enumerate(drafts)) if r is not None]
    if not any(rule.valid for rule in rules):
        floor = floor_drafts(group.spec, group.observables)
        start = len(drafts)
        rules += [r for r in (render_draft(d, group, ctx, start + n) for n, d in enumerate(floor)) if r is not None]
        if gateway is not None and note is None:
            note = "no valid rule from the model's answer"
    return rules, (f"{group.key}: {note}; rules built by the floor" if note else None)


async def generate_rules(
    gateway: Gateway | None, observables: list[Observable], ctx: RuleContext
) -> tuple[list[GeneratedRule], list[str], StepUsage]:
    """Rules for every log-source group (in parallel), and notes on the groups whose rules came from the floor.

    ``gateway=None`` builds the floor's rules only (no model)."""
    usage = StepUsage()
    queries = [o for o in observables if o.kind == "hunt_query"]
    groups = group_observables(observables)
    if gateway is not None and len(groups) > 1:  # the instructions evaluated once for every slot
        await gateway.share_prefix([_instructions()], task="sigma", provider=ctx.provider)
    results = await asyncio.gather(*(_generate_group(gateway, g, ctx, queries, usage) for g in groups))
    rules = [rule for group_rules, _ in results for rule in group_rules]
    notes = [note for _, note in results if note]
    return rules, notes, usage
