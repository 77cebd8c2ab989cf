"""Rank: score an article 1–10 for Sigma huntability, with band, reasons and evidence sentences.

The rubric is the system message and never changes between articles; the article is the last message. A
server with a prefix (KV) cache — llama-server, LM Studio — then evaluates the rubric once and reuses it
for every following article. Nothing variable (date, title, run id) may go before the article.

The article is sent as numbered sentences (:mod:`ctistudio.pipeline.sentences`) and the model cites its
evidence by number, under a JSON Schema whose ``evidence`` items are an enum of those numbers: the quotes
are the article's own sentences, filled in by code, never retyped. Its reasons are the rubric's criteria
(an enum of the prompt's bold labels), so the whole answer is a few dozen tokens. When the model's answer is unusable
(still invalid after the gateway's one repair), the rank comes from the article's deterministic hunt
score (0–100 → 1–10), marked ``origin: hunt_score``, and the run goes on. A server that cannot be reached
still fails the step with its own error.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from ctistudio.ingest.hunt_score import score_article
from ctistudio.llm import BadOutput, Gateway
from ctistudio.pipeline.guard import guard_quotes
from ctistudio.pipeline.models import Band, band_for
from ctistudio.pipeline.normalise import ArticleIndex, fold
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.sentences import Sentence, split_sentences
from ctistudio.pipeline.usage import StepUsage

log = logging.getLogger(__name__)

RANK_PROMPT = "rank"
RANK_MAX_TOKENS = 160  # a score, ≤ 5 rubric labels and ≤ 5 sentence numbers: ~70 tokens when valid
MAX_REASONS = 5
MAX_EVIDENCE = 5
MAX_NUMBERED = 400  # sentences numbered for citation (the rest of a very long article is sent unnumbered)
_LABEL = re.compile(r"^- \*\*(.+?)\*\*", re.M)


def reason_labels() -> list[str]:
    """The rubric's criteria, the bold labels of the rank prompt: what ``reasons`` may name."""
    return _LABEL.findall(load_prompt(RANK_PROMPT).body)


class RankOutcome(BaseModel):
    score: int
    band: Band
    reasons: list[str]
    evidence: list[str]
    dropped_evidence: int = 0
    origin: Literal["model", "hunt_score"] = "model"
    fallback_reason: str | None = None  # why the model's answer was not used
    usage: StepUsage = Field(default_factory=StepUsage)


def numbered_article(sentences: list[Sentence]) -> str:
    """``[n] sentence`` lines: what the model reads and cites by number."""
    return "\n".join(f"[{s.number}] {s.text}" if s.number <= MAX_NUMBERED else s.text for s in sentences)


def rank_schema(numbered: int) -> dict[str, Any]:
    """The rank answer: a score (enum 1–10), the rubric's criteria that moved it (enum of labels), and
    evidence as sentence numbers (enum). Nothing free-form: a small model cannot loop inside a string."""
    properties: dict[str, Any] = {
        "score": {"type": "integer", "enum": list(range(1, 11))},
        "reasons": {
            "type": "array",
            "items": {"type": "string", "enum": reason_labels()},
            "minItems": 1,
            "maxItems": MAX_REASONS,
        },
    }
    if numbered:
        properties["evidence"] = {
            "type": "array",
            "items": {"type": "integer", "enum": list(range(1, numbered + 1))},
            "maxItems": MAX_EVIDENCE,
        }
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def rank_messages(article_text: str, title: str = "") -> list[dict[str, object]]:
    """The rank prompt: the fixed rubric first, the numbered article (truncatable) last."""
    heading = f"Title: {title}\n\n" if title else ""
    body = numbered_article(split_sentences(article_text))
    return [
        {"role": "system", "content": load_prompt(RANK_PROMPT).body},
        {"role": "user", "content": f"{heading}{body}", "truncatable": True},
    ]


def rank_request(article_text: str, title: str = "") -> tuple[list[dict[str, object]], dict[str, Any]]:
    """Messages and answer schema of the rank call for ``article_text``."""
    numbered = min(len(split_sentences(article_text)), MAX_NUMBERED)
    return rank_messages(article_text, title), rank_schema(numbered)


def read_answer(answer: dict[str, Any], sentences: list[Sentence]) -> tuple[int, list[str], list[str]]:
    """Score, reasons (each once) and the evidence sentences (each once) of a schema-valid answer."""
    score = max(1, min(10, int(answer["score"])))
    reasons = list(dict.fromkeys(str(r) for r in answer.get("reasons") or []))[:MAX_REASONS]
    by_number = {s.number: s.quote for s in sentences}
    cited = list(dict.fromkeys(answer.get("evidence") or []))
    evidence = [by_number[n] for n in cited if n in by_number][:MAX_EVIDENCE]
    return score, reasons, evidence


def hunt_score_rank(hunt_score: int, article: str, title: str = "", *, why: str = "") -> RankOutcome:
    """The rank from the deterministic hunt score: 0–100 → 1–10, with the signals it found as reasons and
    the sentences holding their first matches as evidence."""
    score = max(1, min(10, (hunt_score + 5) // 10))
    signals = score_article(article, title).evidence
    reasons = [f"deterministic hunt score {hunt_score}/100 (no usable model answer)"]
    reasons += [f"{e.description} ({e.count} found)" for e in signals if e.points > 0][: MAX_REASONS - 1]
    sentences = split_sentences(article)
    evidence: list[str] = []
    for signal in (e for e in signals if e.points > 0 and e.matches):
        needle = fold(signal.matches[0])[:60]
        sentence = next((s.quote for s in sentences if needle in fold(s.text)), None)
        if sentence and sentence not in evidence:
            evidence.append(sentence)
        if len(evidence) >= MAX_EVIDENCE:
            break
    return RankOutcome(
        score=score, band=band_for(score), reasons=reasons, evidence=evidence, origin="hunt_score", fallback_reason=why
    )


async def rank_article(
    gateway: Gateway,
    article_text: str,
    *,
    title: str = "",
    original: str | None = None,
    provider: str | None = None,
    hunt_score: int | None = None,
) -> RankOutcome:
    """Ask the ``rank`` model for a huntability score; on an unusable answer, rank by the hunt score.

    ``hunt_score`` is the article's stored deterministic score (computed from ``original`` when not given).
    """
    original = original or article_text
    messages, schema = rank_request(article_text, title)
    try:
        result = await gateway.chat(
            messages, task="rank", provider=provider, schema=schema, schema_name="rank", max_tokens=RANK_MAX_TOKENS
        )
    except BadOutput as error:
        log.warning("rank: no usable model answer (%s); ranking by the hunt score", error.message)
        score = hunt_score if hunt_score is not None else score_article(original, title).score
        outcome = hunt_score_rank(score, original, title, why=error.message)
        outcome.usage.add_failure()
        return outcome
    usage = StepUsage()
    usage.add(result)
    score, reasons, cited = read_answer(result.parsed, split_sentences(article_text))
    evidence, dropped = guard_quotes(cited, ArticleIndex(original))  # the junk filter keeps text verbatim: 0
    return RankOutcome(
        score=score,
        band=band_for(score),
        reasons=reasons,
        evidence=evidence,
        dropped_evidence=dropped,
        usage=usage,
    )
