"""The README stays true: every setting, every command and every linked document exists."""

from __future__ import annotations

import re
from pathlib import Path

from ctistudio.cli.main import COMMANDS
from ctistudio.config import Settings, env_name

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    missing = [env_name(f) for f in Settings.model_fields if f"`{env_name(f)}`" not in README]
    assert not missing, f"README 'Configuration' lacks: {missing}"
    assert "`LMSTUDIO_CONTEXT_LENGTH_<model_slug>`" in README


def test_every_documented_variable_exists():
    known = {env_name(f) for f in Settings.model_fields}
    documented = set(
        re.findall(r"^\| `((?:LMSTUDIO|LLAMACPP|MLX|OLLAMA|OPENAI|ANTHROPIC|CTISTUDIO|LLM|HF)_[A-Z_]+)`", README, re.M)
    )
    assert documented - known == set()


def test_every_command_is_in_the_cli_reference():
    missing = [name for name in COMMANDS if f"`ctistudio {name}" not in README]
    assert not missing, f"README 'CLI reference' lacks: {missing}"


def test_quick_start_has_the_two_commands_ci_runs():
    assert "./studio start" in README and "./studio test" in README
    assert "./studio test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_linked_documents_exist():
    links = re.findall(r"\]\((docs/[^)#]+)\)", README)
    assert links
    assert [link for link in links if not (REPO / link).is_file()] == []
