"""Initial schema: every table of ctistudio (sources, articles, chunks, runs, rules, settings, chat, benchmarks).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# JSON on SQLite, JSONB on PostgreSQL; timestamps are stored in UTC (see ctistudio.store.types).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "benchmark_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("results", JSON, nullable=False),
        sa.Column("environment", JSON, nullable=False),
        sa.Column("report_path", sa.String(length=2000), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_benchmark_runs"),
    )
    op.create_index("ix_benchmark_runs_kind", "benchmark_runs", ["kind"], unique=False)

    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_sessions"),
    )
    op.create_table(
        "settings_overrides",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings_overrides"),
    )
    op.create_table(
        "settings_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_settings_version"),
    )
    op.bulk_insert(
        sa.table("settings_version", sa.column("id"), sa.column("version"), sa.column("updated_at", TIMESTAMP)),
        [{"id": 1, "version": 0, "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}],
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("rss_url", sa.String(length=2000), nullable=True),
        sa.Column("check_frequency", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_checked_at", TIMESTAMP, nullable=True),
        sa.Column("last_success_at", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_response_ms", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
    )
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("canonical_url", sa.String(length=2000), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("author", sa.String(length=500), nullable=True),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_format", sa.String(length=20), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("simhash", sa.BigInteger(), nullable=False),
        sa.Column("simhash_band0", sa.Integer(), nullable=False),
        sa.Column("simhash_band1", sa.Integer(), nullable=False),
        sa.Column("simhash_band2", sa.Integer(), nullable=False),
        sa.Column("simhash_band3", sa.Integer(), nullable=False),
        sa.Column("hunt_score", sa.Integer(), nullable=False),
        sa.Column("hunt_evidence", JSON, nullable=False),
        sa.Column("platforms", JSON, nullable=False),
        sa.Column("platform_evidence", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("duplicate_reason", sa.String(length=100), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["duplicate_of"], ["articles.id"], name="fk_articles_duplicate_of_articles", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_articles_source_id_sources", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_articles"),
        sa.UniqueConstraint("canonical_url", name="uq_articles_canonical_url"),
    )
    op.create_index("ix_articles_content_hash", "articles", ["content_hash"], unique=False)
    op.create_index("ix_articles_duplicate_of", "articles", ["duplicate_of"], unique=False)
    op.create_index("ix_articles_hunt_score", "articles", ["hunt_score"], unique=False)
    op.create_index("ix_articles_published_at", "articles", ["published_at"], unique=False)
    op.create_index("ix_articles_simhash_band0", "articles", ["simhash_band0"], unique=False)
    op.create_index("ix_articles_simhash_band1", "articles", ["simhash_band1"], unique=False)
    op.create_index("ix_articles_simhash_band2", "articles", ["simhash_band2"], unique=False)
    op.create_index("ix_articles_simhash_band3", "articles", ["simhash_band3"], unique=False)
    op.create_index("ix_articles_source_id", "articles", ["source_id"], unique=False)
    op.create_index("ix_articles_status_created", "articles", ["status", "created_at"], unique=False)

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("citations", JSON, nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("timings", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["chat_sessions.id"], name="fk_chat_messages_session_id_chat_sessions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
    )
    op.create_index("ix_chat_messages_session_id", "chat_messages", ["session_id"], unique=False)

    op.create_table(
        "source_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("response_ms", sa.Float(), nullable=True),
        sa.Column("entries_seen", sa.Integer(), nullable=False),
        sa.Column("articles_new", sa.Integer(), nullable=False),
        sa.Column("articles_duplicate", sa.Integer(), nullable=False),
        sa.Column("articles_skipped", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_source_checks_source_id_sources", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_source_checks"),
    )
    op.create_index("ix_source_checks_source_started", "source_checks", ["source_id", "started_at"], unique=False)

    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=True),
        sa.Column("char_end", sa.Integer(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=300), nullable=True),
        sa.Column("embedding_dims", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name="fk_chunks_article_id_articles", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chunks"),
        sa.UniqueConstraint("article_id", "ordinal", name="uq_chunks_article_id_ordinal"),
    )
    op.create_index("ix_chunks_article_id", "chunks", ["article_id"], unique=False)
    op.create_index("ix_chunks_embedding_model", "chunks", ["embedding_model"], unique=False)

    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_step", sa.String(length=50), nullable=True),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("config_snapshot", JSON, nullable=False),
        sa.Column("prompt_versions", JSON, nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name="fk_pipeline_runs_article_id_articles", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )
    op.create_index("ix_pipeline_runs_article_id", "pipeline_runs", ["article_id"], unique=False)
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"], unique=False)

    op.create_table(
        "observables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source_evidence", sa.Text(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("extractor", sa.String(length=100), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name="fk_observables_article_id_articles", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_observables_run_id_pipeline_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_observables"),
    )
    op.create_index("ix_observables_article_kind", "observables", ["article_id", "kind"], unique=False)
    op.create_index("ix_observables_run_id", "observables", ["run_id"], unique=False)

    op.create_table(
        "sigma_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("rule_uuid", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("logsource", JSON, nullable=False),
        sa.Column("level", sa.String(length=20), nullable=True),
        sa.Column("validation_status", sa.String(length=20), nullable=False),
        sa.Column("validation_errors", JSON, nullable=False),
        sa.Column("repair_rounds", sa.Integer(), nullable=False),
        sa.Column("similarity", JSON, nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("review_state", sa.String(length=20), nullable=False),
        sa.Column("reviewer_note", sa.Text(), nullable=True),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name="fk_sigma_rules_article_id_articles", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_sigma_rules_run_id_pipeline_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sigma_rules"),
    )
    op.create_index("ix_sigma_rules_article_id", "sigma_rules", ["article_id"], unique=False)
    op.create_index("ix_sigma_rules_review_verdict", "sigma_rules", ["review_state", "verdict"], unique=False)
    op.create_index("ix_sigma_rules_rule_uuid", "sigma_rules", ["rule_uuid"], unique=False)
    op.create_index("ix_sigma_rules_run_id", "sigma_rules", ["run_id"], unique=False)

    op.create_table(
        "step_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("output", JSON, nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("timings", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name="fk_step_checkpoints_run_id_pipeline_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_step_checkpoints"),
        sa.UniqueConstraint("run_id", "step", name="uq_step_checkpoints_run_id_step"),
    )
    op.create_index("ix_step_checkpoints_run_id", "step_checkpoints", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_step_checkpoints_run_id", table_name="step_checkpoints")

    op.drop_table("step_checkpoints")
    op.drop_index("ix_sigma_rules_run_id", table_name="sigma_rules")
    op.drop_index("ix_sigma_rules_rule_uuid", table_name="sigma_rules")
    op.drop_index("ix_sigma_rules_review_verdict", table_name="sigma_rules")
    op.drop_index("ix_sigma_rules_article_id", table_name="sigma_rules")

    op.drop_table("sigma_rules")
    op.drop_index("ix_observables_run_id", table_name="observables")
    op.drop_index("ix_observables_article_kind", table_name="observables")

    op.drop_table("observables")
    op.drop_index("ix_pipeline_runs_status", table_name="pipeline_runs")
    op.drop_index("ix_pipeline_runs_article_id", table_name="pipeline_runs")

    op.drop_table("pipeline_runs")
    op.drop_index("ix_chunks_embedding_model", table_name="chunks")
    op.drop_index("ix_chunks_article_id", table_name="chunks")

    op.drop_table("chunks")
    op.drop_index("ix_source_checks_source_started", table_name="source_checks")

    op.drop_table("source_checks")
    op.drop_index("ix_chat_messages_session_id", table_name="chat_messages")

    op.drop_table("chat_messages")
    op.drop_index("ix_articles_status_created", table_name="articles")
    op.drop_index("ix_articles_source_id", table_name="articles")
    op.drop_index("ix_articles_simhash_band3", table_name="articles")
    op.drop_index("ix_articles_simhash_band2", table_name="articles")
    op.drop_index("ix_articles_simhash_band1", table_name="articles")
    op.drop_index("ix_articles_simhash_band0", table_name="articles")
    op.drop_index("ix_articles_published_at", table_name="articles")
    op.drop_index("ix_articles_hunt_score", table_name="articles")
    op.drop_index("ix_articles_duplicate_of", table_name="articles")
    op.drop_index("ix_articles_content_hash", table_name="articles")

    op.drop_table("articles")
    op.drop_table("sources")
    op.drop_table("settings_version")
    op.drop_table("settings_overrides")
    op.drop_table("chat_sessions")
    op.drop_index("ix_benchmark_runs_kind", table_name="benchmark_runs")

    op.drop_table("benchmark_runs")
