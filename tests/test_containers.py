"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema (the copy check-jsonschema
ships, vendor/compose-spec.json); every ctistudio service's command must parse as a real ``ctistudio``
command with real options, and every variable it sets must be a real setting whose (default) value loads.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ctistudio.cli.main import load_command
from ctistudio.config import CONTEXT_PREFIX, Settings, env_name, load_settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
OURS = {name: service for name, service in COMPOSE["services"].items() if service.get("image") == "ctistudio:latest"}
SETTING_NAMES = {env_name(field) for field in Settings.model_fields}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<word>[^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}`` with nothing set: the default, or a stand-in."""

    def one(match: re.Match[str]) -> str:
        if match.group("op") == "-":
            return match.group("word")
        assert match.group("op") == "?", f"{match.group(0)}: give a default or an error message"
        return "$argon2id$stand-in" if "PASSWORD_HASH" in match.group("name") else "stand-in"

    return INTERPOLATION.sub(one, value)


def test_the_compose_file_follows_the_compose_specification():
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []


def test_the_spec_services_are_there_on_one_image():
    assert set(COMPOSE["services"]) == {"web", "worker", "workflow_worker", "scheduler", "postgres", "redis"}
    assert set(OURS) == {"web", "worker", "workflow_worker", "scheduler"}
    assert "pgvector" in COMPOSE["services"]["postgres"]["image"]
    assert COMPOSE["services"]["redis"]["image"].startswith("redis:")


@pytest.mark.parametrize("service", sorted(OURS))
def test_each_command_is_a_real_ctistudio_command(service: str):
    argv = OURS[service]["command"]
    assert argv[0] == "ctistudio"
    command = load_command(argv[1])
    assert command is not None, f"{service}: no command `ctistudio {argv[1]}`"
    context = command.make_context(argv[1], [_interpolate(a) for a in argv[2:]])  # parses: unknown options fail
    if argv[1] == "worker":
        assert context.params["queues"] == {"worker": "default", "workflow_worker": "workflow"}[service]


@pytest.mark.parametrize("service", sorted(OURS))
def test_each_variable_is_a_real_setting_and_its_value_loads(service: str):
    environment: dict[str, Any] = OURS[service]["environment"]
    unknown = [k for k in environment if k not in SETTING_NAMES and not k.startswith(CONTEXT_PREFIX)]
    assert unknown == []
    values = {key: _interpolate(str(value)) for key, value in environment.items()}
    contexts = {k[len(CONTEXT_PREFIX) :]: int(v) for k, v in values.items() if k.startswith(CONTEXT_PREFIX)}
    settings = load_settings({k: v for k, v in values.items() if not k.startswith(CONTEXT_PREFIX)}, env_file=None)
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.resolved_database_url().startswith("postgresql://ctistudio:")
    assert settings.lmstudio_api_url == "http://host.docker.internal:1234/v1"
    assert "host.docker.internal:host-gateway" in OURS[service]["extra_hosts"]
    if service in ("web", "worker", "workflow_worker"):  # the spec's per-service windows
        assert contexts == {"QWEN_QWEN3_4B_2507": 16384 if service == "web" else 4096}


def test_the_image_is_slim_non_root_locked_and_holds_no_model():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    assert re.search(r"^USER ctistudio$", dockerfile, re.M)
    assert "pip install --no-deps -r requirements.lock" in dockerfile
    instructions = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    assert not any("models install" in line or ".gguf" in line for line in instructions)
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".env", "models"} <= set(ignored)
