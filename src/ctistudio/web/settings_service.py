"""The settings the UI may change, how they are shown (secrets as "set"/"not set") and how they are saved.

Saved values are overrides kept by the store; every process overlays them on env and ``.env`` through
:class:`ctistudio.config.SettingsSource`, so a change applies everywhere without a restart. Web server,
authentication and storage settings are deliberately not editable here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from ctistudio.config import Settings, env_name, load_settings
from ctistudio.errors import InvalidInput
from ctistudio.llm.providers import SPECS, provider_names

# group title → fields, in the order the Settings page shows them
GROUPS: dict[str, list[str]] = {
    "Providers": [
        "llm_provider",
        "lmstudio_enabled",
        "llamacpp_enabled",
        "mlx_enabled",
        "ollama_enabled",
        "embedded",
        "embedding_provider",
    ],
    "LM Studio": [
        "lmstudio_api_url",
        "lmstudio_embedding_url",
        "lmstudio_model",
        "lmstudio_model_rank",
        "lmstudio_model_extract",
        "lmstudio_model_sigma",
        "lmstudio_model_chat",
        "lmstudio_embedding_model",
        "lmstudio_max_context",
        "lmstudio_temperature",
        "lmstudio_top_p",
        "lmstudio_seed",
        "lmstudio_timeout",
        "lmstudio_api_key",
    ],
    "Generation": ["temperature", "top_p", "seed", "timeout", "rank_threshold"],
    "llama.cpp": ["llamacpp_server_url", "llamacpp_model_path", "llamacpp_n_ctx"],
    "MLX": ["mlx_model_path"],
    "Ollama": ["ollama_url", "ollama_model", "ollama_embedding_model"],
    "OpenAI-compatible server": ["openai_compat_url", "openai_compat_model", "openai_compat_api_key"],
    "Cloud": ["openai_api_key", "openai_model", "anthropic_api_key", "anthropic_model"],
    "Publishing": ["github_token", "github_api_url", "gitlab_token", "gitlab_url"],
}
EDITABLE: list[str] = [name for fields in GROUPS.values() for name in fields]
# Model names: dropdowns filled from the live model list.
MODEL_FIELDS = {name for name in GROUPS["LM Studio"] if name.startswith("lmstudio_") and name.endswith("model")}
MODEL_FIELDS |= {name for name in GROUPS["LM Studio"] if name.startswith("lmstudio_model_")}
MAX_TEXT = 2000


def _is_secret(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    return SecretStr in typing.get_args(annotation) or annotation is SecretStr


def _update_annotation(name: str) -> Any:
    """The type a client may send for ``name``: secrets and paths as text, everything else as declared."""
    annotation = Settings.model_fields[name].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation in (SecretStr, str, Path):
        return str
    return annotation


def _build_update_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name in EDITABLE:
        annotation = _update_annotation(name)
        if annotation is str:
            fields[name] = (str | None, Field(None, max_length=MAX_TEXT))
        else:
            fields[name] = (annotation | None, None)
    fields["clear"] = (
        list[Literal[tuple(EDITABLE)]],  # type: ignore[misc]
        Field(default_factory=list, max_length=len(EDITABLE), description="Fields to reset to env/.env/default."),
    )
    return create_model(
        "SettingsUpdate",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Values to save (omit or null: unchanged). Secrets are write-only.",
        **fields,
    )


SettingsUpdate = _build_update_model()


class SettingView(BaseModel):
    name: str
    env: str
    group: str
    value: Any  # secrets: "set" / "not set"
    secret: bool
    overridden: bool  # saved in the UI (overrides env/.env)
    kind: str  # bool | int | float | text | choice | model
    choices: list[str] = []


class SettingsView(BaseModel):
    settings: list[SettingView]
    saving_available: bool
    saving_detail: str


def _kind(name: str) -> tuple[str, list[str]]:
    if name == "llm_provider":
        return "choice", ["auto", *provider_names()]
    annotation = Settings.model_fields[name].annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return "choice", [str(a) for a in args]
    if name in MODEL_FIELDS:
        return "model", []
    base = _update_annotation(name)
    for cls, kind in ((bool, "bool"), (int, "int"), (float, "float")):
        if base is cls or cls in typing.get_args(base):
            return kind, []
    return "text", []


def view_settings(settings: Settings, overrides: Mapping[str, Any], saving: tuple[bool, str]) -> SettingsView:
    """What GET /api/settings returns: every editable value, secrets reduced to "set" / "not set"."""
    out = []
    for group, names in GROUPS.items():
        for name in names:
            secret = _is_secret(name)
            value = getattr(settings, name)
            kind, choices = _kind(name)
            out.append(
                SettingView(
                    name=name,
                    env=env_name(name),
                    group=group,
                    value=("set" if value is not None and value.get_secret_value() else "not set")
                    if secret
                    else (str(value) if value is not None and kind == "text" else value),
                    secret=secret,
                    overridden=name in overrides,
                    kind=kind,
                    choices=choices,
                )
            )
    return SettingsView(settings=out, saving_available=saving[0], saving_detail=saving[1])


def settings_delta(saved: Mapping[str, Any], update: BaseModel) -> dict[str, Any]:
    """What to write to the store for ``update`` (``None`` = reset to env/.env/default).

    Refused with the variable's name when the result would be invalid. An empty secret means "keep".
    """
    data = update.model_dump(exclude_none=True)
    delta: dict[str, Any] = dict.fromkeys(data.pop("clear", []))
    unknown = set(data) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"these settings cannot be changed here: {', '.join(sorted(unknown))}")
    for name, value in data.items():
        if _is_secret(name) and value == "":
            continue
        delta[name] = value
    merged = {k: v for k, v in {**saved, **delta}.items() if v is not None}
    load_settings(merged, env_file=None)  # validates; raises ConfigurationError naming the variable
    return delta


# Labels of the Settings page (the seed's wording where it has one).
LABELS: dict[str, str] = {
    "llm_provider": "Default provider (auto = the fallback chain)",
    "lmstudio_enabled": "Use LM Studio",
    "llamacpp_enabled": "Use llama.cpp",
    "mlx_enabled": "Use MLX",
    "ollama_enabled": "Use Ollama",
    "embedded": "Use the embedded model (works with nothing else installed)",
    "embedding_provider": "Embedding provider",
    "lmstudio_api_url": "LM Studio server URL (base)",
    "lmstudio_embedding_url": "LM Studio embedding URL",
    "lmstudio_model": "Default model",
    "lmstudio_model_rank": "Model for ranking",
    "lmstudio_model_extract": "Model for extraction",
    "lmstudio_model_sigma": "Model for Sigma generation",
    "lmstudio_model_chat": "Model for chat",
    "lmstudio_embedding_model": "Embedding model",
    "lmstudio_max_context": "Max context (tokens; must match the loaded model)",
    "lmstudio_timeout": "Timeout for LM Studio only (seconds; empty: the general one)",
    "lmstudio_api_key": "LM Studio permission key",
    "lmstudio_temperature": "Temperature for LM Studio only (empty: the general one)",
    "lmstudio_top_p": "Top p for LM Studio only (empty: the general one)",
    "lmstudio_seed": "Seed for LM Studio only (empty: the general one)",
    "temperature": "Temperature (every provider)",
    "top_p": "Top p (every provider)",
    "seed": "Seed (every provider)",
    "timeout": "Timeout (seconds, every provider)",
    "rank_threshold": "Rank threshold (1–10) for extraction and Sigma",
    "openai_api_key": "OpenAI API key",
    "anthropic_api_key": "Anthropic API key",
    "openai_compat_api_key": "API key",
    "github_token": "GitHub token (pull requests)",
    "github_api_url": "GitHub API URL",
    "gitlab_token": "GitLab token (merge requests)",
    "gitlab_url": "GitLab URL",
}
# Settings group → providers whose "Test Connection" button it shows (each provider's spec names its group).
GROUP_PROVIDERS: dict[str, list[str]] = {}
for _spec in SPECS:
    GROUP_PROVIDERS.setdefault(_spec.group, []).append(_spec.name)


def grouped(view: SettingsView) -> list[tuple[str, list[SettingView]]]:
    out: dict[str, list[SettingView]] = {}
    for item in view.settings:
        out.setdefault(item.group, []).append(item)
    return list(out.items())
