"""Rank: score an article 1–10 for Sigma huntability, with band, reasons and quoted evidence.

The rubric is the system message and never changes between articles; the article is the last message. A
server with a prefix (KV) cache — llama-server, LM Studio — then evaluates the rubric once and reuses it
for every following article. Nothing variable (date, title, run id) may go before the article.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ctistudio.llm import Gateway
from ctistudio.pipeline.guard import guard_quotes
from ctistudio.pipeline.models import Band, RankAnswer
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.prompts import load_prompt
from ctistudio.pipeline.usage import StepUsage

RANK_PROMPT = "rank"
RANK_MAX_TOKENS = 600  # score, reasons, ≤ 5 quotes: valid answers of up to 327 tokens seen (full command lines quoted)


class RankOutcome(BaseModel):
    score: int
    band: Band
    reasons: list[str]
    evidence: list[str]
    dropped_evidence: int = 0
    usage: StepUsage = Field(default_factory=StepUsage)


def rank_messages(article_text: str, title: str = "") -> list[dict[str, object]]:
    """The rank prompt: the fixed rubric first, the article (truncatable) last."""
    heading = f"Title: {title}\n\n" if title else ""
    return [
        {"role": "system", "content": load_prompt(RANK_PROMPT).body},
        {"role": "user", "content": f"{heading}{article_text}", "truncatable": True},
    ]


async def rank_article(
    gateway: Gateway,
    article_text: str,
    *,
    title: str = "",
    original: str | None = None,
    provider: str | None = None,
) -> RankOutcome:
    """Ask the ``rank`` model for a huntability score; quotes not found in the article are dropped."""
    result = await gateway.chat(
        rank_messages(article_text, title),
        task="rank",
        provider=provider,
        output_type=RankAnswer,
        max_tokens=RANK_MAX_TOKENS,
    )
    answer: RankAnswer = result.parsed
    usage = StepUsage()
    usage.add(result)
    evidence, dropped = guard_quotes(answer.evidence, ArticleIndex(original or article_text))
    return RankOutcome(
        score=answer.score,
        band=answer.band,
        reasons=answer.reasons,
        evidence=evidence,
        dropped_evidence=dropped,
        usage=usage,
    )
