from __future__ import annotations

from pathlib import Path

import pytest

from ctistudio.config import SettingsSource, load_settings, model_slug
from ctistudio.errors import ConfigurationError


def test_seed_defaults():
    s = load_settings()
    assert (s.temperature, s.top_p, s.seed, s.timeout) == (0.0, 0.9, 42, 600.0)
    assert s.for_lmstudio("temperature") == 0.0 and s.for_lmstudio("seed") == 42
    assert s.lmstudio_model == "deepseek/deepseek-r1-0528-qwen3-8b"
    assert s.lmstudio_model_rank == "qwen/qwen3-4b-2507"
    assert s.llm_provider == "auto"
    assert s.model_for_task("chat") == s.lmstudio_model  # LMSTUDIO_MODEL_CHAT unset falls back


def test_env_names_are_the_seeds(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LMSTUDIO_API_URL", "http://10.0.0.5:1234/v1/")
    monkeypatch.setenv("LMSTUDIO_MODEL_SIGMA", "some/model")
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    monkeypatch.setenv("CTISTUDIO_DATABASE_URL", "postgresql://x@localhost/db")
    s = load_settings()
    assert s.lmstudio_api_url == "http://10.0.0.5:1234/v1"
    assert s.model_for_task("sigma") == "some/model"
    assert s.llm_provider == "lmstudio"
    assert s.resolved_database_url() == "postgresql://x@localhost/db"


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LMSTUDIO_TEMPERATURE", "hot")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "LMSTUDIO_TEMPERATURE" in str(info.value)


def test_invalid_provider_lists_allowed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER", "gpt")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "LLM_PROVIDER" in str(info.value) and "lmstudio" in str(info.value)


def test_sampling_and_timeout_have_honest_names_and_accept_the_seeds(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CTISTUDIO_TEMPERATURE", "0.3")
    monkeypatch.setenv("CTISTUDIO_TIMEOUT", "30")
    s = load_settings()
    assert (s.temperature, s.timeout) == (0.3, 30.0)
    assert (s.for_lmstudio("temperature"), s.for_lmstudio("timeout")) == (0.3, 30.0)
    # the seed's LM Studio names, alone: every provider's values (accepted aliases)
    monkeypatch.delenv("CTISTUDIO_TEMPERATURE")
    monkeypatch.delenv("CTISTUDIO_TIMEOUT")
    monkeypatch.setenv("LMSTUDIO_TOP_P", "0.5")
    monkeypatch.setenv("LMSTUDIO_SEED", "7")
    monkeypatch.setenv("LMSTUDIO_TIMEOUT", "45")
    s = load_settings()
    assert (s.top_p, s.seed, s.timeout) == (0.5, 7, 45.0)
    # both names: the CTISTUDIO_ one for every provider, LM Studio's own for LM Studio
    monkeypatch.setenv("CTISTUDIO_SEED", "5")
    monkeypatch.setenv("CTISTUDIO_TIMEOUT", "90")
    s = load_settings()
    assert (s.seed, s.for_lmstudio("seed"), s.timeout, s.for_lmstudio("timeout")) == (5, 7, 90.0, 45.0)
    # a value saved in the UI by either name behaves like the variable
    assert load_settings({"seed": 9}).seed == 9
    assert load_settings({"LMSTUDIO_SEED": 11}).for_lmstudio("seed") == 11


def test_invalid_sampling_value_names_the_variable_given(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CTISTUDIO_TOP_P", "2")
    with pytest.raises(ConfigurationError, match="CTISTUDIO_TOP_P"):
        load_settings()


def test_context_length_overrides_from_env_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LMSTUDIO_CONTEXT_LENGTH_QWEN_QWEN3_4B_2507", "16384")
    (tmp_path / ".env").write_text("LMSTUDIO_CONTEXT_LENGTH_OTHER_MODEL=4096\nLMSTUDIO_SEED=7\n")
    s = load_settings()
    assert s.context_lengths[model_slug("qwen/qwen3-4b-2507")] == 16384
    assert s.context_lengths["OTHER_MODEL"] == 4096
    assert s.seed == 7 and s.lmstudio_seed == 7


def test_bad_context_override(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LMSTUDIO_CONTEXT_LENGTH_X", "big")
    with pytest.raises(ConfigurationError, match="LMSTUDIO_CONTEXT_LENGTH_X"):
        load_settings()


def test_overrides_by_env_name_and_source_reload():
    saved = {"version": 1, "values": {"LMSTUDIO_API_URL": "http://127.0.0.1:1111/v1"}}
    source = SettingsSource(lambda: (saved["version"], saved["values"]), poll_seconds=0)
    assert source.get().lmstudio_api_url == "http://127.0.0.1:1111/v1"
    saved["version"] = 2
    saved["values"] = {"lmstudio_api_url": "http://127.0.0.1:2222/v1"}
    assert source.get().lmstudio_api_url == "http://127.0.0.1:2222/v1"


def test_unknown_override_refused():
    with pytest.raises(ConfigurationError, match="unknown setting"):
        load_settings({"NOPE": 1})
