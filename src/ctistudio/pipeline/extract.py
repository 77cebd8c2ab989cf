"""Extract: one sub-agent per kind of observable, run in parallel, each answer checked against the article.

Every sub-agent sends the same two first messages — the shared extraction rules and the article — and only
its last message differs (its task and the pre-extractor's attention snippets for it). Servers with a
prefix cache evaluate the article once per slot instead of once per agent. The router's per-endpoint limit
bounds how many agents are in flight, so all of them are started at once.

When no model answers (or an agent's answer stays invalid after the gateway's repair), that agent falls back
to the deterministic pre-extractor: the floor of the step, never an empty result by accident.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from ctistudio.llm import Gateway, LLMError
from ctistudio.pipeline.guard import guard_items
from ctistudio.pipeline.models import (
    Dropped,
    ExtractedItem,
    HuntQueryAnswer,
    ItemsAnswer,
    LineageAnswer,
    NetworkAnswer,
    Observable,
)
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.preextract import Candidate, PreExtraction, attention_snippets, pre_extract
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.usage import StepUsage

log = logging.getLogger(__name__)

EXTRACT_SYSTEM_PROMPT = "extract_system"
EXTRACT_MAX_TOKENS = 1500


def answer_budget(article_text: str) -> int:
    """Tokens an agent may write: its items quote the article (value and evidence), so an answer much
    longer than the article is a model repeating itself — small models do, and stop only at the budget."""
    return min(EXTRACT_MAX_TOKENS, 256 + len(article_text) // 2)


PATTERN_CONFIDENCE = 0.5
_LINEAGE_CUES = re.compile(
    r"spawn|child (?:process )?of|parent process|launched|process tree|executed by|→|->|started by", re.I
)


@dataclass(frozen=True)
class Agent:
    """One extraction sub-agent: its prompt, its answer type, and the pre-extractor kinds it builds on."""

    kind: str
    prompt: str
    answer_type: type[BaseModel]
    floor_kinds: tuple[str, ...]
    snippet_kinds: tuple[str, ...]


AGENTS: tuple[Agent, ...] = (
    Agent("cmdline", "extract_cmdline", ItemsAnswer, ("cmdline",), ("cmdline",)),
    Agent("lineage", "extract_lineage", LineageAnswer, (), ("cmdline",)),
    Agent("registry", "extract_registry", ItemsAnswer, ("registry",), ("registry",)),
    Agent("service", "extract_services", ItemsAnswer, ("service",), ("service", "registry")),
    Agent("scheduled_task", "extract_tasks", ItemsAnswer, ("scheduled_task",), ("scheduled_task",)),
    Agent("network", "extract_network", NetworkAnswer, ("ip", "domain", "url"), ("ip", "domain", "url")),
    Agent("hunt_query", "extract_queries", HuntQueryAnswer, ("hunt_query",), ("hunt_query",)),
)
AGENTS_BY_KIND = {agent.kind: agent for agent in AGENTS}


class AgentReport(BaseModel):
    """How one sub-agent went: ``model`` (answered), ``pattern`` (fell back to the floor) or ``skipped``."""

    kind: str
    mode: str
    kept: int = 0
    dropped: int = 0
    error: str | None = None


class ExtractionOutcome(BaseModel):
    observables: list[Observable] = Field(default_factory=list)
    dropped: list[Dropped] = Field(default_factory=list)
    agents: list[AgentReport] = Field(default_factory=list)
    usage: StepUsage = Field(default_factory=StepUsage)

    def dropped_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.dropped:
            out[item.reason] = out.get(item.reason, 0) + 1
        return out


def prompt_names() -> list[str]:
    return [EXTRACT_SYSTEM_PROMPT, *(agent.prompt for agent in AGENTS)]


# -- the floor: pre-extractor candidates as observables ---------------------------------------------------
_TASK_NAME = re.compile(r"/tn\s+(\"[^\"]+\"|\S+)|-TaskName\s+(\"[^\"]+\"|'[^']+'|\S+)", re.I)
_SERVICE_NAME = re.compile(r"\bsc(?:\.exe)?\s+(?:create|config)\s+(\"[^\"]+\"|\S+)|-Name\s+(\"[^\"]+\"|\S+)", re.I)


def _named(pattern: re.Pattern[str], command: str) -> str:
    match = pattern.search(command)
    if not match:
        return command
    return next(g for g in match.groups() if g).strip("\"'")


def floor_observables(kind: str, candidates: list[Candidate], article: str) -> list[Observable]:
    """What the pre-extractor alone says for ``kind`` (every value is a span of the article)."""
    out = []
    for c in candidates:
        value, attributes = c.value, {}
        if kind == "scheduled_task":
            value = _named(_TASK_NAME, c.value)
        elif kind == "service":
            value = _named(_SERVICE_NAME, c.value)
        elif kind == "network":
            attributes = {"kind": c.kind}
        elif kind == "hunt_query" and c.language:
            attributes = {"language": c.language}
        out.append(
            Observable(
                kind=kind,
                value=value,
                source_evidence=c.quote(article),
                justification="matched by the deterministic pre-extractor",
                confidence=PATTERN_CONFIDENCE,
                origin="pattern",
                attributes=attributes,
            )
        )
    return out


def hash_observables(pre: PreExtraction, article: str) -> list[Observable]:
    """File hashes come from the pre-extractor only: a regex finds them all, no model needed."""
    return [
        Observable(
            kind="hash",
            value=c.value,
            source_evidence=c.quote(article),
            justification="file hash named in the article",
            confidence=0.9,
            origin="pattern",
        )
        for c in pre.of("hash")
    ]


# -- the sub-agents ------------------------------------------------------------------------------------------
def agent_messages(agent: Agent, article_text: str, snippets: str) -> list[dict[str, object]]:
    task = load_prompt(agent.prompt).body
    if snippets:
        task += (
            "\nThe pre-extractor flagged these passages (quote from the article, not from this list if they "
            "differ):\n" + snippets
        )
    return [
        {"role": "system", "content": load_prompt(EXTRACT_SYSTEM_PROMPT).body},
        {"role": "user", "content": f"ARTICLE:\n{article_text}", "truncatable": True},
        {"role": "user", "content": task},
    ]


def _snippets_for(agent: Agent, article_text: str, pre: PreExtraction) -> str:
    candidates = pre.of(*agent.snippet_kinds)
    if agent.kind == "lineage":
        candidates = candidates + [
            Candidate("cue", m.group(0), m.start(), m.end()) for m in _LINEAGE_CUES.finditer(article_text)
        ]
    return attention_snippets(article_text, candidates)


async def _run_agent(
    gateway: Gateway,
    agent: Agent,
    article_text: str,
    index: ArticleIndex,
    pre_original: PreExtraction,
    pre_filtered: PreExtraction,
    provider: str | None,
    usage: StepUsage,
) -> tuple[list[Observable], list[Dropped], AgentReport]:
    try:
        result = await gateway.chat(
            agent_messages(agent, article_text, _snippets_for(agent, article_text, pre_filtered)),
            task="extract",
            provider=provider,
            output_type=agent.answer_type,
            max_tokens=answer_budget(article_text),
        )
    except LLMError as error:  # BadOutput (still invalid after the repair) included
        usage.add_failure()
        log.warning("extract/%s: no usable model answer (%s); using the pre-extractor", agent.kind, error.message)
        floor = floor_observables(agent.kind, pre_original.of(*agent.floor_kinds), index.article)
        return floor, [], AgentReport(kind=agent.kind, mode="pattern", kept=len(floor), error=error.message)
    usage.add(result)
    items: list[ExtractedItem] = list(result.parsed.items)
    kept, dropped = guard_items(agent.kind, items, index)
    return kept, dropped, AgentReport(kind=agent.kind, mode="model", kept=len(kept), dropped=len(dropped))


async def extract_observables(
    gateway: Gateway | None,
    article_text: str,
    *,
    original: str | None = None,
    provider: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> ExtractionOutcome:
    """Run the sub-agents for ``kinds`` (default: all) in parallel over ``article_text``.

    ``original`` is the article before the junk filter: the guard checks quotes against it, and the floor
    quotes it. ``gateway=None`` runs the deterministic floor only (no model).
    """
    original = original or article_text
    index = ArticleIndex(original)
    pre_original, pre_filtered = pre_extract(original), pre_extract(article_text)
    agents = [a for a in AGENTS if kinds is None or a.kind in kinds]
    outcome = ExtractionOutcome()
    if gateway is None:
        for agent in agents:
            floor = floor_observables(agent.kind, pre_original.of(*agent.floor_kinds), original)
            outcome.observables.extend(floor)
            outcome.agents.append(AgentReport(kind=agent.kind, mode="pattern", kept=len(floor)))
    else:
        results = await asyncio.gather(
            *(
                _run_agent(gateway, a, article_text, index, pre_original, pre_filtered, provider, outcome.usage)
                for a in agents
            )
        )
        for kept, dropped, report in results:
            outcome.observables.extend(kept)
            outcome.dropped.extend(dropped)
            outcome.agents.append(report)
    if kinds is None or "hash" in kinds:
        outcome.observables.extend(hash_observables(pre_original, original))
    return outcome
