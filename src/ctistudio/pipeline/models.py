"""Typed outputs of the pipeline's LLM calls and steps.

The LLM-facing models (``*Answer``) are what the gateway asks for through ``response_format: json_schema``:
small, flat and bounded, so that constrained decoding on small local models stays fast and valid. The step
records (``*Output``) are what each step stores as its checkpoint (plain JSON, stable keys).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Band = Literal["none", "low", "moderate", "high", "excellent"]


def clipped(limit: int) -> Any:
    """Cut a string or list to ``limit`` after parsing.

    Bounds are enforced here instead of with ``maxLength``/``maxItems`` in the JSON Schema: llama.cpp turns
    those into grammar repetitions (``x{0,2000}``) that make constrained decoding markedly slower.
    """
    return AfterValidator(lambda value: value[:limit])


Quote = Annotated[str, clipped(2000)]
Short = Annotated[str, clipped(500)]
Confidence = Literal["low", "medium", "high"]
CONFIDENCE_VALUE = {"low": 0.3, "medium": 0.6, "high": 0.9}


def band_for(score: int) -> Band:
    """The band of a 1–10 huntability score: 1–2 none, 3–4 low, 5–6 moderate, 7–8 high, 9–10 excellent."""
    return ("none", "none", "low", "low", "moderate", "moderate", "high", "high", "excellent", "excellent")[
        max(1, min(10, score)) - 1
    ]  # type: ignore[return-value]


# -- rank ---------------------------------------------------------------------------------------------
class RankAnswer(BaseModel):
    """The model's huntability judgement of one article."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(ge=1, le=10, description="Sigma huntability, 1 (nothing to hunt) to 10 (ready-made).")
    band: Band = Field(description="none (1-2), low (3-4), moderate (5-6), high (7-8), excellent (9-10).")
    reasons: Annotated[list[Short], clipped(6)] = Field(
        min_length=1, description="Why this score, one short line each (2 to 5)."
    )
    evidence: Annotated[list[Quote], clipped(6)] = Field(
        default_factory=list, description="Verbatim quotes from the article that support the score (at most 5)."
    )

    @model_validator(mode="after")
    def _band_follows_score(self) -> RankAnswer:
        # The score is the judgement; the band is its name. A model that disagrees with itself gets the score's.
        self.band = band_for(self.score)
        return self


# -- extract --------------------------------------------------------------------------------------------
class ExtractedItem(BaseModel):
    """One observable found by a sub-agent, with the verbatim quote that proves it is in the article."""

    model_config = ConfigDict(extra="ignore")

    value: Quote = Field(min_length=1, description="The observable, exactly as written.")
    source_evidence: Quote = Field(
        min_length=1, description="A verbatim quote from the article containing the observable."
    )
    justification: Short = Field(default="", description="Why this is a huntable observable.")
    confidence: Confidence = Field(default="medium", description="How sure you are: low, medium or high.")

    @field_validator("value", "source_evidence")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()


class LineageItem(ExtractedItem):
    parent: Short = Field(min_length=1, description="Parent process image, e.g. winword.exe.")
    child: Short = Field(min_length=1, description="Child process image, e.g. powershell.exe.")


class NetworkItem(ExtractedItem):
    kind: Literal["ip", "domain", "url", "other"] = Field(default="other", description="ip, domain, url or other.")


class HuntQueryItem(ExtractedItem):
    language: Literal["kql", "spl", "eql", "sigma", "other"] = Field(
        default="other", description="Query language: kql, spl, eql, sigma or other."
    )


class ItemsAnswer(BaseModel):
    items: Annotated[list[ExtractedItem], clipped(40)] = Field(default_factory=list)


class LineageAnswer(BaseModel):
    items: Annotated[list[LineageItem], clipped(40)] = Field(default_factory=list)


class NetworkAnswer(BaseModel):
    items: Annotated[list[NetworkItem], clipped(60)] = Field(default_factory=list)


class HuntQueryAnswer(BaseModel):
    items: Annotated[list[HuntQueryItem], clipped(20)] = Field(default_factory=list)


class Observable(BaseModel):
    """An item that passed the hallucination guard, as stored (one row per observable)."""

    kind: str  # cmdline | lineage | registry | service | scheduled_task | network | hunt_query | hash
    value: str
    source_evidence: str
    justification: str = ""
    confidence: float = 0.5
    origin: Literal["model", "pattern"] = "model"
    attributes: dict[str, str] = Field(default_factory=dict)  # parent/child, network kind, query language


class Dropped(BaseModel):
    """An item the hallucination guard refused, kept for the run report."""

    kind: str
    value: str
    reason: Literal["evidence_not_in_article", "value_not_in_article", "evidence_too_short"]


# -- sigma ------------------------------------------------------------------------------------------------
class RuleIssue(BaseModel):
    """One problem the validator found in a rule (see :class:`ctistudio.sigma.ValidationIssue`)."""

    severity: str  # error | warning | info
    code: str
    message: str
    location: str | None = None
    line: int | None = None


class GeneratedRule(BaseModel):
    """A rule after validate ⇄ repair. Invalid rules are kept, with their last errors."""

    rule_id: str
    group: str  # the log-source group it was generated for
    yaml: str
    title: str = ""
    logsource: dict[str, str] = Field(default_factory=dict)
    level: str | None = None
    valid: bool
    issues: list[RuleIssue] = Field(default_factory=list)
    repair_rounds: int = 0
    history: list[list[RuleIssue]] = Field(default_factory=list)  # the issues seen before each repair


class SimilarRule(BaseModel):
    rule_id: str
    title: str = ""
    path: str = ""
    score: float
    relation: str = ""  # equivalent | subset | superset | overlap
    verdict: str = ""  # what this match alone would make the rule


class NoveltyResult(BaseModel):
    rule_id: str
    verdict: Literal["duplicate", "similar", "novel"]
    reason: str = ""
    top: list[SimilarRule] = Field(default_factory=list)
