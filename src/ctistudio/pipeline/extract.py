"""Extract: one sub-agent per kind of observable, run in parallel, never below the pre-extractor's floor.

Every sub-agent sends the same two first messages — the shared extraction rules and the article — and only
its last message differs (its task and the pre-extractor's numbered candidates of its kind). Servers with
a prefix cache evaluate the article once per slot instead of once per agent, and a llama.cpp server that
can copy a slot's state (:meth:`Gateway.share_prefix`) once for all its slots. The router's per-endpoint
limit bounds how many agents are in flight, so all of them are started at once.

An agent answers by selecting candidates by number and adding items the list missed
(:mod:`ctistudio.pipeline.selection`); its result is the union of the floor and what the model adds, so a
weak or broken model can only add. When no model answers (or an answer stays invalid after the gateway's
one repair, or is empty), the agent's result is the floor alone, marked ``pattern``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.llm import Gateway, LLMError
from ctistudio.pipeline.guard import guard_new_items
from ctistudio.pipeline.models import Dropped, Observable
from ctistudio.pipeline.normalise import ArticleIndex, normalise_item
from ctistudio.pipeline.preextract import Candidate, PreExtraction, attention_snippets, pre_extract
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.selection import (
    MAX_LISTED,
    answer_budget,
    candidate_listing,
    is_empty,
    kept_numbers,
    new_items,
    selection_schema,
)
from ctistudio.pipeline.usage import StepUsage

log = logging.getLogger(__name__)

EXTRACT_SYSTEM_PROMPT = "extract_system"
PATTERN_CONFIDENCE = 0.5  # the pre-extractor alone
CONFIRMED_CONFIDENCE = 0.8  # a candidate the model selected: two independent readings agree
SNIPPET_BUDGET = 1200  # characters of attention snippets for an agent with no candidates
_LINEAGE_CUES = re.compile(
    r"spawn|child (?:process )?of|parent process|launched|process tree|executed by|→|->|started by", re.I
)


@dataclass(frozen=True)
class Agent:
    """One extraction sub-agent: its prompt and the pre-extractor kinds that are its floor and its hints."""

    kind: str
    prompt: str
    floor_kinds: tuple[str, ...]
    snippet_kinds: tuple[str, ...]


AGENTS: tuple[Agent, ...] = (
    Agent("cmdline", "extract_cmdline", ("cmdline",), ("cmdline",)),
    Agent("lineage", "extract_lineage", ("lineage",), ("cmdline",)),
    Agent("registry", "extract_registry", ("registry",), ("registry",)),
    Agent("service", "extract_services", ("service",), ("service", "registry")),
    Agent("scheduled_task", "extract_tasks", ("scheduled_task",), ("scheduled_task",)),
    Agent("network", "extract_network", ("ip", "domain", "url"), ("ip", "domain", "url")),
    Agent("hunt_query", "extract_queries", ("hunt_query",), ("hunt_query",)),
)
AGENTS_BY_KIND = {agent.kind: agent for agent in AGENTS}


class AgentReport(BaseModel):
    """How one sub-agent went.

    ``mode``: ``model`` (answered; its items are the floor plus what it selected and added) or ``pattern``
    (no usable answer: the floor alone). ``floor``: the pre-extractor's items; ``confirmed``: those the
    model selected (or re-found); ``new``: items only the model found; ``dropped``: new items the guard
    refused."""

    kind: str
    mode: str
    kept: int = 0
    floor: int = 0
    confirmed: int = 0
    new: int = 0
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

    def by_origin(self) -> dict[str, int]:
        """How many observables the model gave (selected or found) and how many the pre-extractor alone."""
        out = {"model": 0, "pattern": 0}
        for o in self.observables:
            out[o.origin] += 1
        return out


def prompt_names() -> list[str]:
    return [EXTRACT_SYSTEM_PROMPT, *(agent.prompt for agent in AGENTS)]


# -- the floor: pre-extractor candidates as observables ---------------------------------------------------
def floor_observables(kind: str, candidates: list[Candidate], article: str) -> list[Observable]:
    """What the pre-extractor alone says for ``kind`` (every value and evidence a span of the article)."""
    out = []
    for c in candidates:
        attributes = c.attribute_map()
        if kind == "network":
            attributes["kind"] = c.kind
        elif kind == "hunt_query" and c.language:
            attributes["language"] = c.language
        out.append(
            Observable(
                kind=kind,
                value=c.value,
                source_evidence=c.evidence(article),
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
            source_evidence=c.evidence(article),
            justification="file hash named in the article",
            confidence=0.9,
            origin="pattern",
        )
        for c in pre.of("hash")
    ]


def _confirmed(observable: Observable) -> Observable:
    if observable.origin == "model":
        return observable
    return observable.model_copy(
        update={"origin": "model", "confidence": CONFIRMED_CONFIDENCE, "justification": "selected by the model"}
    )


# Kinds whose items are whole statements: a piece of one is not a new observable (a registry key of a listed
# key+value, or a domain of a listed URL, is).
_WHOLE_ITEM_KINDS = ("cmdline", "hunt_query")


def merge_answer(
    kind: str, floor: list[Observable], answer: dict[str, Any], listed: int, index: ArticleIndex
) -> tuple[list[Observable], list[Dropped], AgentReport]:
    """The floor, with the candidates the model selected marked ``model``, plus its grounded new items.

    A new item equal to a floor item (after normalisation) confirms it instead of adding a duplicate."""
    merged = list(floor)
    for number in kept_numbers(answer, listed):
        merged[number - 1] = _confirmed(merged[number - 1])
    position = {normalise_item(o.value): i for i, o in enumerate(merged)}
    added, dropped = guard_new_items(kind, new_items(kind, answer), index)
    new = 0
    for observable in added:
        key = normalise_item(observable.value)
        if key in position:
            merged[position[key]] = _confirmed(merged[position[key]])
            continue
        if kind in _WHOLE_ITEM_KINDS and any(key in known for known in position):
            # `cmd.exe /c` of `cmd.exe /c whoami`: a small model re-quotes the head of a listed command line
            dropped.append(Dropped(kind=kind, value=observable.value[:300], reason="part_of_candidate"))
            continue
        position[key] = len(merged)
        merged.append(observable)
        new += 1
    confirmed = sum(o.origin == "model" for o in merged[: len(floor)])
    report = AgentReport(
        kind=kind,
        mode="model",
        kept=len(merged),
        floor=len(floor),
        confirmed=confirmed,
        new=new,
        dropped=len(dropped),
    )
    return merged, dropped, report


# -- the sub-agents ------------------------------------------------------------------------------------------
def agent_task(agent: Agent, candidates: list[Candidate], snippets: str = "") -> str:
    """The agent's last message: its task, then the numbered candidates (or, with none, attention snippets)."""
    task = load_prompt(agent.prompt).body
    if candidates:
        listing = candidate_listing(candidates)
        return f"{task}\nCandidates (number: text):\n{listing}\n"
    task += "\nThe pattern matcher listed no candidates for this task: answer with an empty `new` list unless the "
    task += "article states some.\n"
    if snippets:
        task += "Passages that may hold some:\n" + snippets + "\n"
    return task


def shared_messages(article_text: str) -> list[dict[str, object]]:
    """What every agent's request starts with: the fixed rules, then the article (truncatable)."""
    return [
        {"role": "system", "content": load_prompt(EXTRACT_SYSTEM_PROMPT).body},
        {"role": "user", "content": f"ARTICLE:\n{article_text}", "truncatable": True},
    ]


def agent_messages(agent: Agent, article_text: str, task: str) -> list[dict[str, object]]:
    """The shared messages, then the agent's task: the prefix-cache layout."""
    return [*shared_messages(article_text), {"role": "user", "content": task}]


@dataclass(frozen=True)
class AgentRequest:
    """Everything one agent sends: messages, the answer's schema and budget, and the candidates listed."""

    messages: list[dict[str, object]]
    schema: dict[str, Any]
    max_tokens: int
    candidates: list[Candidate]
    listed: int


def agent_request(agent: Agent, article_text: str, pre: PreExtraction, pre_filtered: PreExtraction) -> AgentRequest:
    """The request of ``agent`` over ``article_text``; ``pre`` gives its candidates (the floor), and
    ``pre_filtered`` (the pre-extraction of ``article_text`` itself) the snippets when there are none."""
    candidates = pre.of(*agent.floor_kinds)
    listed = min(len(candidates), MAX_LISTED)
    snippets = "" if candidates else _snippets_for(agent, article_text, pre_filtered)
    return AgentRequest(
        messages=agent_messages(agent, article_text, agent_task(agent, candidates, snippets)),
        schema=selection_schema(agent.kind, listed),
        max_tokens=answer_budget(listed, article_text),
        candidates=candidates,
        listed=listed,
    )


def _snippets_for(agent: Agent, article_text: str, pre: PreExtraction) -> str:
    candidates = pre.of(*agent.snippet_kinds)
    if agent.kind == "lineage":
        candidates = candidates + [
            Candidate("cue", m.group(0), m.start(), m.end()) for m in _LINEAGE_CUES.finditer(article_text)
        ]
    return attention_snippets(article_text, candidates, budget=SNIPPET_BUDGET)


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
    request = agent_request(agent, article_text, pre_original, pre_filtered)
    floor = floor_observables(agent.kind, request.candidates, index.article)
    try:
        result = await gateway.chat(
            request.messages,
            task="extract",
            provider=provider,
            schema=request.schema,
            schema_name=f"{agent.kind}_selection",
            max_tokens=request.max_tokens,
        )
    except LLMError as error:  # BadOutput (still invalid after the repair) included
        usage.add_failure()
        return _floor_only(agent.kind, floor, error.message)
    usage.add(result)
    if is_empty(result.parsed):
        return _floor_only(agent.kind, floor, "the model's answer was empty ({})")
    return merge_answer(agent.kind, floor, result.parsed, request.listed, index)


def _floor_only(kind: str, floor: list[Observable], why: str) -> tuple[list[Observable], list[Dropped], AgentReport]:
    log.warning("extract/%s: no usable model answer (%s); using the pre-extractor", kind, why)
    return floor, [], AgentReport(kind=kind, mode="pattern", kept=len(floor), floor=len(floor), error=why)


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
            outcome.agents.append(AgentReport(kind=agent.kind, mode="pattern", kept=len(floor), floor=len(floor)))
    else:
        if len(agents) > 1:  # one evaluation of the article for every slot the agents will run on
            await gateway.share_prefix(shared_messages(article_text), task="extract", provider=provider)
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
