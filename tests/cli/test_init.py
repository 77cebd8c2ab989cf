"""``ctistudio init``: answers (flags or prompts) written to .env, then the connection test."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctistudio.testing.lmstudio_double import LMStudioDouble


@pytest.fixture
def unset_lmstudio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite points LM Studio at a dead port through the environment, which would win over .env.
    monkeypatch.delenv("LMSTUDIO_API_URL", raising=False)
    monkeypatch.delenv("LMSTUDIO_EMBEDDING_URL", raising=False)


def env_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.mark.usefixtures("unset_lmstudio_env")
def test_init_yes_with_url_writes_env_and_passes_the_test(cli, start_double, tmp_path: Path):
    double = start_double(LMStudioDouble)
    Path(".env").write_text("# my settings\nCTISTUDIO_LOG_LEVEL=DEBUG\n")
    result = cli("init", "--yes", "--lmstudio-url", double.root_url)
    assert result.exit_code == 0, result.output
    values = env_values(tmp_path / ".env")
    assert values["LMSTUDIO_API_URL"] == double.url
    assert values["LMSTUDIO_EMBEDDING_URL"] == double.url + "/embeddings"
    assert values["CTISTUDIO_LOG_LEVEL"] == "DEBUG"  # other lines kept
    assert (tmp_path / ".env").read_text().startswith("# my settings\n")
    assert "all checks passed" in result.stdout
    assert double.requests_to("/v1/chat/completions")  # the connection test really ran against it


@pytest.mark.usefixtures("unset_lmstudio_env")
def test_init_refuses_an_invalid_url_before_writing(cli):
    result = cli("init", "--yes", "--lmstudio-url", "localhost:1234", "--skip-test")
    assert result.exit_code == 1
    assert "LMSTUDIO_API_URL" in result.stderr and not Path(".env").exists()


@pytest.mark.usefixtures("unset_lmstudio_env")
def test_init_fails_with_the_fixes_when_the_server_is_down(cli):
    result = cli("init", "--yes", "--lmstudio-url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert env_values(Path(".env"))["LMSTUDIO_API_URL"] == "http://127.0.0.1:9/v1"
    assert "lms server start" in result.stdout and "connection test failed" in result.stderr


@pytest.mark.usefixtures("unset_lmstudio_env")
def test_init_asks_the_setup_questions(cli, start_double):
    double = start_double(LMStudioDouble)
    answers = "\n".join(
        [
            "y",  # use LM Studio
            double.root_url,  # server URL
            "",  # default model (keep)
            "qwen/qwen3-4b-2507",  # ranking model
            "",  # extraction
            "",  # sigma
            "",  # OpenAI key: none
            "sk-ant-xyz",  # Anthropic key
            "lmstudio",  # LLM_PROVIDER
            "n",  # generate an API token: no
        ]
    )
    result = cli("init", input=answers + "\n")
    assert result.exit_code == 0, result.output
    values = env_values(Path(".env"))
    assert values["LMSTUDIO_ENABLED"] == "true" and values["LMSTUDIO_API_URL"] == double.url
    assert values["ANTHROPIC_API_KEY"] == "sk-ant-xyz" and values["LLM_PROVIDER"] == "lmstudio"
    assert "OPENAI_API_KEY" not in values
    assert "ANTHROPIC_API_KEY=(set)" in result.stdout  # keys are never echoed
