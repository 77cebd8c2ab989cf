"""The schema is created by the shipped migrations, on first use, and matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ctistudio.config import load_settings
from ctistudio.store import Store
from ctistudio.store.migrate import head_revision
from ctistudio.store.models import Base

EXPECTED_TABLES = {
    "sources",
    "source_checks",
    "articles",
    "chunks",
    "pipeline_runs",
    "step_checkpoints",
    "observables",
    "sigma_rules",
    "settings_overrides",
    "settings_version",
    "chat_sessions",
    "chat_messages",
    "benchmark_runs",
}


def test_first_use_creates_every_table_at_head(database_url):
    with Store(url=database_url) as store:
        assert set(store.table_names()) == EXPECTED_TABLES | {"alembic_version"}
        assert store.schema_revision() == head_revision()


def test_migrations_match_the_models(database_url):
    """Autogenerate finds nothing to do: the migrations create exactly what the models describe."""
    with Store(url=database_url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_reopening_is_idempotent_and_keeps_data(database_url):
    with Store(url=database_url) as store:
        store.save_settings_overrides({"lmstudio_model": "qwen/qwen3-8b"})
    with Store(url=database_url) as store:
        assert store.load_settings_overrides()[1] == {"lmstudio_model": "qwen/qwen3-8b"}
        assert store.schema_revision() == head_revision()


def test_default_database_is_a_sqlite_file_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_DATA_DIR", str(tmp_path / "nested" / "data"))
    settings = load_settings(env_file=None)
    with Store(settings) as store:
        assert store.dialect == "sqlite"
        assert (tmp_path / "nested" / "data" / "ctistudio.db").is_file()
        assert "articles" in store.table_names()
