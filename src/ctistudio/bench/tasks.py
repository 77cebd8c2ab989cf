"""The benchmark's tasks: the pipeline's own prompts and output schemas on a real CTI article.

Each task builds exactly the messages the workflow sends (``rank_messages``, ``agent_messages``, the
``sigma_generate`` prompt with ``group_prompt``) and judges the answer the way the workflow would use it:

- ``rank``: one call of the rank step; valid = JSON that fits the rank schema (a score, reasons, evidence
  as sentence numbers). Quality: the score, and the number of sentences cited.
- ``extract``: the command-line sub-agent (the extract step runs seven such agents, in parallel); valid =
  JSON that fits its selection schema. Quality: candidates selected, new items kept by the hallucination
  guard and dropped, and the share of the pre-extractor's command lines the model confirmed.
- ``sigma``: one generation call for the largest log-source group of the pre-extractor's observables, with
  the step's schema (fields, modifiers, values and tags from enums); valid = the answer fits the schema and
  leaves at least one specific rule, every rendered rule pySigma-valid. Quality: rules, the share of chosen
  rules specific enough to keep, and the share that validate.
- ``chat``: a question about the article, answered in prose; valid = a non-empty answer. With the packaged
  demo article, quality is the share of expected facts the answer names.

Every call carries a per-call sample marker at the START of the variable part (the article), so a
server's prefix cache reuses the fixed instructions — as in the workflow — but never a whole previous
prompt, which would make warm calls look far faster than real articles.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctistudio.bench.models import BenchTaskName
from ctistudio.errors import InvalidInput
from ctistudio.llm.errors import BadOutput
from ctistudio.llm.structured import parse_structured
from ctistudio.pipeline.extract import (
    AGENTS_BY_KIND,
    EXTRACT_SYSTEM_PROMPT,
    AgentRequest,
    agent_request,
    floor_observables,
    merge_answer,
)
from ctistudio.pipeline.normalise import ArticleIndex, normalise_item
from ctistudio.pipeline.preextract import PreExtraction, pre_extract
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.rank import RANK_MAX_TOKENS, RANK_PROMPT, rank_request
from ctistudio.resources import read_text
from ctistudio.safe_yaml import FRONT_MATTER_LIMITS, load_yaml

if TYPE_CHECKING:
    from ctistudio.pipeline.sigma_gen import GroupRequest, LogSourceGroup, RuleContext

DEMO_ARTICLE = "data/demo_article.md"
EXTRACT_AGENT = "cmdline"
CHAT_MAX_TOKENS = 300

CHAT_SYSTEM = (
    "You are a detection engineer answering questions about a threat-intelligence article. Answer from the "
    "article only, in at most five short sentences, naming processes, files and commands exactly as written."
)
CHAT_QUESTION = "Which process chain gave the attacker code execution, and how were credentials stolen?"
# Facts the packaged demo article states that a good answer to CHAT_QUESTION names (normalised match).
DEMO_CHAT_FACTS = ("onenote", "mshta", "powershell", "comsvcs", "minidump", "lsass")


@dataclass(frozen=True)
class BenchArticle:
    """The article every task runs on: body without front matter, title and URL."""

    name: str
    title: str
    url: str
    body: str
    is_demo: bool = False

    @classmethod
    def demo(cls) -> BenchArticle:
        return cls.parse(read_text(DEMO_ARTICLE), name=Path(DEMO_ARTICLE).name, is_demo=True)

    @classmethod
    def from_file(cls, path: Path) -> BenchArticle:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the article {path}: {exc}", fix="Pass a readable text file.") from exc
        if len(text.strip()) < 200:
            raise InvalidInput(
                f"the article {path} is too short to benchmark with ({len(text.strip())} characters)",
                fix="Use a real CTI article (a few thousand characters), or omit --article for the demo article.",
            )
        return cls.parse(text, name=path.name)

    @classmethod
    def parse(cls, text: str, *, name: str, is_demo: bool = False) -> BenchArticle:
        """Split an optional YAML front matter (``title``, ``url``) from the Markdown body."""
        meta: dict[str, Any] = {}
        body = text
        if text.startswith("---\n") and "\n---\n" in text[4:]:
            header, body = text[4:].split("\n---\n", 1)
            loaded = load_yaml(header, limits=FRONT_MATTER_LIMITS, what=f"the front matter of {name}")
            meta = loaded if isinstance(loaded, dict) else {}
        title = str(meta.get("title") or Path(name).stem)
        return cls(name=name, title=title, url=str(meta.get("url") or ""), body=body.strip(), is_demo=is_demo)

    def variant(self, marker: str) -> str:
        """The body with a sample marker first: new text for the server's cache, same article for the model."""
        return f"[benchmark sample {marker}]\n\n{self.body}"


@dataclass(frozen=True)
class Judgement:
    valid: bool
    quality: dict[str, float] = field(default_factory=dict)
    detail: str | None = None


@dataclass(frozen=True)
class BenchTask:
    """One task: how to build its request and how to judge its answer.

    ``output_budget`` returns the workflow's ``max_tokens`` for the task on an article (a function, so the
    sigma step's module — and pySigma behind it — is imported only when the sigma task runs, and extract
    gets the pipeline's article-sized budget).
    """

    name: BenchTaskName
    prompts: tuple[str, ...]
    output_budget: Callable[[BenchArticle], int]
    response_schema: Callable[[BenchArticle], tuple[str, dict[str, Any]] | None]
    build: Callable[[BenchArticle, str], list[dict[str, Any]]]
    judge: Callable[[str, BenchArticle], Judgement]

    def max_tokens(self, article: BenchArticle) -> int:
        return self.output_budget(article)

    def prompt_ref(self) -> str:
        return ", ".join(load_prompt(name).ref for name in self.prompts)

    def schema(self, article: BenchArticle) -> dict[str, Any] | None:
        named = self.response_schema(article)
        return named[1] if named else None


def _decode(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The answer validated against ``schema`` (the gateway's own decoding), or why it is not valid."""
    try:
        return parse_structured(text, schema), None
    except BadOutput as error:
        return None, error.message


def _no_schema(_article: BenchArticle) -> None:
    return None


# -- rank ----------------------------------------------------------------------------------------------
def _rank_build(article: BenchArticle, marker: str) -> list[dict[str, Any]]:
    return rank_request(article.variant(marker), title=article.title)[0]


def _rank_schema(article: BenchArticle) -> tuple[str, dict[str, Any]]:
    # the sample marker adds one numbered line; every marker gives the same count
    return "rank", rank_request(article.variant("0"), title=article.title)[1]


def _rank_judge(text: str, article: BenchArticle) -> Judgement:
    answer, problem = _decode(text, _rank_schema(article)[1])
    if answer is None:
        return Judgement(False, detail=problem)
    return Judgement(True, {"score": float(answer["score"]), "evidence_cited": float(len(set(answer["evidence"])))})


# -- extract -------------------------------------------------------------------------------------------
def _extract_request(article: BenchArticle, marker: str = "0") -> AgentRequest:
    """The command-line agent's request, as the extract step builds it (candidates of the marked text)."""
    text = article.variant(marker)
    pre = _pre_extract_cached(text)
    return agent_request(AGENTS_BY_KIND[EXTRACT_AGENT], text, pre, pre)


def _extract_build(article: BenchArticle, marker: str) -> list[dict[str, Any]]:
    return _extract_request(article, marker).messages


def _extract_schema(article: BenchArticle) -> tuple[str, dict[str, Any]]:
    return f"{EXTRACT_AGENT}_selection", _extract_request(article).schema


def _pre(article: BenchArticle) -> PreExtraction:
    return _pre_extract_cached(article.body)


@functools.lru_cache(maxsize=4)
def _pre_extract_cached(body: str) -> PreExtraction:
    return pre_extract(body)


def _command_key(text: str) -> str:
    """A command line for comparison: normalised, without quotes (models often drop them), one space."""
    return " ".join(normalise_item(text).replace('"', " ").replace("'", " ").split())


def command_line_recall(values: list[str], reference: list[str]) -> float | None:
    """Share of ``reference`` command lines that some value contains (or is contained in), normalised."""
    if not reference:
        return None
    found = [_command_key(v) for v in values]
    hits = 0
    for expected in reference:
        key = _command_key(expected)
        if any(key in value or (len(value) >= 12 and value in key) for value in found):
            hits += 1
    return hits / len(reference)


def _extract_judge(text: str, article: BenchArticle) -> Judgement:
    request = _extract_request(article)
    answer, problem = _decode(text, request.schema)
    if answer is None:
        return Judgement(False, detail=problem)
    body = article.variant("0")
    floor = floor_observables(EXTRACT_AGENT, request.candidates, body)
    merged, dropped, report = merge_answer(EXTRACT_AGENT, floor, answer, request.listed, ArticleIndex(body))
    quality = {
        "selected": float(len(set(answer.get("keep") or []))),
        "new_items": float(report.new),
        "dropped_items": float(len(dropped)),
    }
    confirmed = [o.value for o in merged[: len(floor)] if o.origin == "model"]
    recall = command_line_recall(confirmed, [c.value for c in _pre(article).of("cmdline")])
    if recall is not None:
        quality["cmdline_recall"] = recall
    return Judgement(True, quality)


# -- sigma ---------------------------------------------------------------------------------------------
def _sigma_max_tokens(_article: BenchArticle) -> int:
    from ctistudio.pipeline.sigma_gen import SIGMA_MAX_TOKENS

    return SIGMA_MAX_TOKENS


def sigma_group(article: BenchArticle) -> LogSourceGroup:
    """The log-source group the sigma task writes for: the largest one the pre-extractor's floor yields."""
    from ctistudio.pipeline.sigma_gen import group_observables

    pre = _pre(article)
    observables = []
    for kind in ("cmdline", "registry", "service", "scheduled_task", "network"):
        agent = AGENTS_BY_KIND[kind]
        observables += floor_observables(kind, pre.of(*agent.floor_kinds), article.body)
    groups = group_observables(observables)
    if not groups:
        raise InvalidInput(
            f"the article {article.name} has no command lines, registry keys or network indicators to write "
            "Sigma rules for",
            fix="Use a technical CTI article (or omit --article), or leave sigma out of --tasks.",
        )
    return max(groups, key=lambda g: (len(g.observables), g.key == "windows/process_creation"))


def _sigma_context(article: BenchArticle, marker: str = "0") -> RuleContext:
    from ctistudio.pipeline.sigma_gen import RuleContext

    title = f"{article.title} [benchmark sample {marker}]"
    return RuleContext("bench", title, article.url or article.name, dt.date.today().isoformat(), article=article.body)


def _sigma_request(article: BenchArticle, marker: str = "0") -> GroupRequest:
    """The sigma step's request for the task's group (the marker changes the title line only)."""
    from ctistudio.pipeline.sigma_gen import group_request

    request = group_request(sigma_group(article), _sigma_context(article, marker), [])
    if request is None:
        raise InvalidInput(
            f"the article {article.name} names nothing a Sigma rule could match",
            fix="Use a technical CTI article (or omit --article), or leave sigma out of --tasks.",
        )
    return request


def _sigma_build(article: BenchArticle, marker: str) -> list[dict[str, Any]]:
    return _sigma_request(article, marker).messages


def _sigma_schema(article: BenchArticle) -> tuple[str, dict[str, Any]]:
    return "sigma_rules", _sigma_request(article).schema


def _sigma_judge(text: str, article: BenchArticle) -> Judgement:
    """Valid: the answer fits the schema and leaves at least one specific rule, every one pySigma-valid."""
    from ctistudio.pipeline.sigma_gen import render_draft, usable_drafts  # pySigma behind: imported when judged

    request = _sigma_request(article)
    answer, problem = _decode(text, request.schema)
    if answer is None:
        return Judgement(False, {"rules": 0.0, "valid_rules": 0.0}, detail=problem)
    drafts = usable_drafts(answer, request.group.spec)
    rules = [r for r in (render_draft(d, request.group, _sigma_context(article), n) for n, d in enumerate(drafts)) if r]
    chosen = len(answer.get("rules", []))
    quality = {"rules": float(len(rules)), "specific_rules": len(drafts) / chosen if chosen else 0.0}
    if not rules:
        return Judgement(False, {**quality, "valid_rules": 0.0}, detail="no rule matches anything specific")
    valid = sum(r.valid for r in rules)
    quality["valid_rules"] = valid / len(rules)
    invalid = next((r for r in rules if not r.valid), None)
    return Judgement(valid == len(rules), quality, detail=invalid.issues[0].message if invalid else None)


# -- chat ----------------------------------------------------------------------------------------------
def _chat_build(article: BenchArticle, marker: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": f"ARTICLE:\n{article.variant(marker)}", "truncatable": True},
        {"role": "user", "content": CHAT_QUESTION},
    ]


def _chat_judge(text: str, article: BenchArticle) -> Judgement:
    answer = text.strip()
    if not answer:
        return Judgement(False, detail="empty answer")
    quality = {"answer_chars": float(len(answer))}
    if article.is_demo:
        folded = normalise_item(answer)
        quality["facts_named"] = sum(fact in folded for fact in DEMO_CHAT_FACTS) / len(DEMO_CHAT_FACTS)
    return Judgement(True, quality)


TASKS: dict[BenchTaskName, BenchTask] = {
    "rank": BenchTask("rank", (RANK_PROMPT,), lambda _article: RANK_MAX_TOKENS, _rank_schema, _rank_build, _rank_judge),
    "extract": BenchTask(
        "extract",
        (EXTRACT_SYSTEM_PROMPT, AGENTS_BY_KIND[EXTRACT_AGENT].prompt),
        lambda article: _extract_request(article).max_tokens,
        _extract_schema,
        _extract_build,
        _extract_judge,
    ),
    "sigma": BenchTask("sigma", ("sigma_generate",), _sigma_max_tokens, _sigma_schema, _sigma_build, _sigma_judge),
    "chat": BenchTask("chat", (), lambda _article: CHAT_MAX_TOKENS, _no_schema, _chat_build, _chat_judge),
}
