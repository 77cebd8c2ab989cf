"""The whole schema of ctistudio as SQLAlchemy 2 models (one class per table).

The tables are created and changed only by the migrations in :mod:`ctistudio.store.migrations`; a test
checks that the migrations and these models agree. Columns that hold free-form structured data use
:data:`~ctistudio.store.types.JsonType` (JSON on SQLite, JSONB on PostgreSQL). Status-like columns are
plain strings whose allowed values are listed in the ``*_STATUSES`` tuples below (no database enums, so
adding a value needs no migration).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ctistudio.store.types import JsonType, UtcDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ARTICLE_STATUSES = ("new", "duplicate", "queued", "processing", "processed", "failed", "junk")
CHECK_STATUSES = ("ok", "not_modified", "failed", "refused")
RUN_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled", "gated")
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "skipped")
VALIDATION_STATUSES = ("pending", "valid", "invalid")
VERDICTS = ("duplicate", "similar", "novel")
REVIEW_STATES = ("pending", "approved", "rejected")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType, datetime: UtcDateTime}


def _created() -> Mapped[datetime]:
    return mapped_column(UtcDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow, nullable=False)


# -- sources -----------------------------------------------------------------------------------------
class Source(Base):
    """A CTI publisher we poll (one entry of sources.yaml, or one added with ``sources add``)."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))
    rss_url: Mapped[str | None] = mapped_column(String(2000))
    check_frequency: Mapped[int] = mapped_column(Integer, default=3600)  # seconds between checks
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # see ingest.sources_config.SourceOptions
    origin: Mapped[str] = mapped_column(String(20), default="yaml")  # yaml | user
    # conditional GET state of the feed
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # health
    last_checked_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_response_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    checks: Mapped[list[SourceCheck]] = relationship(back_populates="source", cascade="all, delete-orphan")


class SourceCheck(Base):
    """One poll of one source: what happened, how long it took, what it brought in or why it was refused."""

    __tablename__ = "source_checks"
    __table_args__ = (Index("ix_source_checks_source_started", "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))  # CHECK_STATUSES
    http_status: Mapped[int | None] = mapped_column(Integer)
    response_ms: Mapped[float | None] = mapped_column(Float)
    entries_seen: Mapped[int] = mapped_column(Integer, default=0)
    articles_new: Mapped[int] = mapped_column(Integer, default=0)
    articles_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    articles_skipped: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"refused": [{"url", "reason"}], ...}

    source: Mapped[Source] = relationship(back_populates="checks")


# -- articles ----------------------------------------------------------------------------------------
class Article(Base):
    """A CTI article as clean text, with its fingerprints and deterministic scores.

    ``duplicate_of`` points at the first article with the same content hash or a simhash within Hamming
    distance 3; such rows keep ``status='duplicate'`` and ``duplicate_reason`` says which test matched.
    ``simhash`` is the 64-bit fingerprint as a signed integer; ``simhash_band0..3`` are its four 16-bit
    bands, indexed so near-duplicate candidates are found without scanning (pigeonhole: distance ≤ 3 means
    at least one band is equal).
    """

    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_simhash_band0", "simhash_band0"),
        Index("ix_articles_simhash_band1", "simhash_band1"),
        Index("ix_articles_simhash_band2", "simhash_band2"),
        Index("ix_articles_simhash_band3", "simhash_band3"),
        Index("ix_articles_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    origin: Mapped[str] = mapped_column(String(20), default="feed")  # feed | url | upload | text | demo
    url: Mapped[str | None] = mapped_column(String(2000))
    canonical_url: Mapped[str | None] = mapped_column(String(2000), unique=True)
    title: Mapped[str] = mapped_column(String(1000))
    author: Mapped[str | None] = mapped_column(String(500))
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    content: Mapped[str] = mapped_column(Text)
    content_format: Mapped[str] = mapped_column(String(20), default="text")  # text | markdown
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    simhash: Mapped[int] = mapped_column(BigInteger)
    simhash_band0: Mapped[int] = mapped_column(Integer)
    simhash_band1: Mapped[int] = mapped_column(Integer)
    simhash_band2: Mapped[int] = mapped_column(Integer)
    simhash_band3: Mapped[int] = mapped_column(Integer)
    hunt_score: Mapped[int] = mapped_column(Integer, default=0, index=True)
    hunt_evidence: Mapped[list[Any]] = mapped_column(default=list)
    platforms: Mapped[list[Any]] = mapped_column(default=list)
    platform_evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="new")  # ARTICLE_STATUSES
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="SET NULL"), index=True)
    duplicate_reason: Mapped[str | None] = mapped_column(String(100))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # feed tags, upload file name, extractor …
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    source: Mapped[Source | None] = relationship()
    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="article", cascade="all, delete-orphan", order_by="Chunk.ordinal"
    )


class Chunk(Base):
    """A token-bounded piece of an article for retrieval; ``embedding`` is little-endian float32 bytes."""

    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("article_id", "ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(300), index=True)
    embedding_dims: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()

    article: Mapped[Article] = relationship(back_populates="chunks")


# -- pipeline ----------------------------------------------------------------------------------------
class PipelineRun(Base):
    """One run of the agentic pipeline over one article, with the configuration it ran under."""

    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # RUN_STATUSES
    current_step: Mapped[str | None] = mapped_column(String(50))
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    config_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    # A succeeded run whose output is partly or wholly a deterministic floor says so: one line per finding
    # (rank from the hunt score, extraction agents on the pre-extractor, floor or invalid rules). Empty: clean.
    warnings: Mapped[list[Any] | None] = mapped_column(default=list)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = _updated()
    # The lease of the worker executing the run (ctistudio.store.run_leases): its name, and until when it
    # holds the run unless it renews; a run whose lease has expired may be taken over by another worker.
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()

    steps: Mapped[list[StepCheckpoint]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="StepCheckpoint.id"
    )


class StepCheckpoint(Base):
    """The stored output of one step of one run (a resumed run skips steps that have succeeded)."""

    __tablename__ = "step_checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # STEP_STATUSES
    output: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(300))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    run: Mapped[PipelineRun] = relationship(back_populates="steps")


class Observable(Base):
    """One item an extractor found in an article, with the verbatim evidence and why it matters."""

    __tablename__ = "observables"
    __table_args__ = (Index("ix_observables_article_kind", "article_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(50))  # command_line, process_lineage, registry, …
    value: Mapped[str] = mapped_column(Text)
    source_evidence: Mapped[str | None] = mapped_column(Text)
    justification: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    extractor: Mapped[str | None] = mapped_column(String(100))  # sub-agent name or "regex"
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()


class SigmaRule(Base):
    """A generated Sigma rule: its YAML, validation, similarity to SigmaHQ and review state."""

    __tablename__ = "sigma_rules"
    __table_args__ = (Index("ix_sigma_rules_review_verdict", "review_state", "verdict"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"), index=True)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    rule_uuid: Mapped[str | None] = mapped_column(String(64), index=True)  # the rule's own `id:`
    title: Mapped[str] = mapped_column(String(500))
    yaml: Mapped[str] = mapped_column(Text)
    logsource: Mapped[dict[str, Any]] = mapped_column(default=dict)
    level: Mapped[str | None] = mapped_column(String(20))
    validation_status: Mapped[str] = mapped_column(String(20), default="pending")  # VALIDATION_STATUSES
    validation_errors: Mapped[list[Any]] = mapped_column(default=list)
    repair_rounds: Mapped[int] = mapped_column(Integer, default=0)
    similarity: Mapped[list[Any]] = mapped_column(default=list)  # top-k similar SigmaHQ rules with scores
    verdict: Mapped[str | None] = mapped_column(String(20))  # VERDICTS
    review_state: Mapped[str] = mapped_column(String(20), default="pending")  # REVIEW_STATES
    reviewer_note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# -- settings ----------------------------------------------------------------------------------------
class SettingOverride(Base):
    """A value saved in the Settings UI; it overrides env/.env for the field named ``key``."""

    __tablename__ = "settings_overrides"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonType, nullable=True)
    updated_at: Mapped[datetime] = _updated()


class SettingsVersion(Base):
    """One row (id=1) whose ``version`` goes up on every save, so processes can poll cheaply."""

    __tablename__ = "settings_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = _updated()


# -- chat --------------------------------------------------------------------------------------------
class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str | None] = mapped_column(String(500))
    provider: Mapped[str | None] = mapped_column(String(100))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    messages: Mapped[list[ChatMessage]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="ChatMessage.id"
    )


class ChatMessage(Base):
    """One turn; assistant turns carry citations, provider, model and timings (retrieval, TTFT, tokens/s)."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # system | user | assistant
    content: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[Any]] = mapped_column(default=list)
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(300))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()

    session: Mapped[ChatSession] = relationship(back_populates="messages")


# -- benchmarks --------------------------------------------------------------------------------------
class BenchmarkRun(Base):
    __tablename__ = "benchmark_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), default="llm", index=True)
    status: Mapped[str] = mapped_column(String(20), default="finished")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_path: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = _created()
