"""Settings saved in the UI: versioned overrides that every process's SettingsSource picks up."""

from __future__ import annotations

from ctistudio.config import SettingsSource
from ctistudio.store import Store


def test_save_merges_and_none_removes(store):
    assert store.load_settings_overrides() == (0, {})
    version = store.save_settings_overrides({"lmstudio_model": "qwen/qwen3-8b", "lmstudio_temperature": 0.2})
    assert version == 1
    assert store.load_settings_overrides() == (1, {"lmstudio_model": "qwen/qwen3-8b", "lmstudio_temperature": 0.2})
    assert store.save_settings_overrides({"lmstudio_temperature": None, "ollama_enabled": True}) == 2
    assert store.load_settings_overrides() == (2, {"lmstudio_model": "qwen/qwen3-8b", "ollama_enabled": True})


def test_json_values_keep_their_types(store):
    store.save_settings_overrides({"context_lengths": {"QWEN_QWEN3_8B": 16384}, "lmstudio_top_p": 0.95})
    _, values = store.load_settings_overrides()
    assert values == {"context_lengths": {"QWEN_QWEN3_8B": 16384}, "lmstudio_top_p": 0.95}


def test_a_save_in_another_process_reaches_settings_source(database_url):
    """Two Store objects stand for two processes (web and CLI) sharing one database."""
    with Store(url=database_url) as web, Store(url=database_url) as cli:
        source = SettingsSource(cli.load_settings_overrides, poll_seconds=0, env_file=None)
        assert source.get().lmstudio_model_rank == "qwen/qwen3-4b-2507"
        web.save_settings_overrides({"LMSTUDIO_MODEL_RANK": "qwen/qwen3-8b"})
        assert source.get().lmstudio_model_rank == "qwen/qwen3-8b"
        web.save_settings_overrides({"LMSTUDIO_MODEL_RANK": None})
        assert source.get().lmstudio_model_rank == "qwen/qwen3-4b-2507"
