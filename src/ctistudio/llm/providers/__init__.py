"""Provider construction from settings, and the order of the ``auto`` chain.

Each provider name maps to a builder ``(settings) -> Provider``; builders import their module lazily so an
engine that is not installed (mlx-lm, llama-cpp-python) costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm.provider import Provider

# The seed's chain — MLX → llama.cpp → LM Studio → cloud — with Ollama and any OpenAI-compatible server
# among the local ones, and the embedded engine last so a user who configured nothing still gets answers.
AUTO_ORDER = ["mlx", "llamacpp", "lmstudio", "ollama", "openai_compat", "openai", "anthropic", "embedded"]

# name -> "module:function" building the provider from settings
BUILDERS: dict[str, str] = {
    "lmstudio": "ctistudio.llm.providers.builders:build_lmstudio",
    "openai": "ctistudio.llm.providers.builders:build_openai",
    "anthropic": "ctistudio.llm.providers.builders:build_anthropic",
    "openai_compat": "ctistudio.llm.providers.builders:build_openai_compat",
}

# name -> whether settings enable it (a provider that is not enabled is skipped by ``auto``)
ENABLED: dict[str, Callable[[Settings], bool]] = {
    "mlx": lambda s: s.mlx_enabled,
    "llamacpp": lambda s: s.llamacpp_enabled,
    "lmstudio": lambda s: s.lmstudio_enabled,
    "ollama": lambda s: s.ollama_enabled,
    "openai_compat": lambda s: bool(s.openai_compat_url),
    "openai": lambda s: s.openai_api_key is not None,
    "anthropic": lambda s: s.anthropic_api_key is not None,
    "embedded": lambda s: s.embedded,
}


def available_names() -> list[str]:
    return [name for name in AUTO_ORDER if name in BUILDERS]


def build_provider(name: str, settings: Settings) -> Provider:
    """Build provider ``name`` from ``settings`` (whether or not it is enabled: an explicit choice wins)."""
    target = BUILDERS.get(name)
    if target is None:
        raise ConfigurationError(
            f"unknown LLM provider {name!r}",
            fix=f"Use one of: auto, {', '.join(available_names())} (LLM_PROVIDER or --provider).",
        )
    module_name, function = target.split(":")
    builder = getattr(importlib.import_module(module_name), function)
    return builder(settings)


def auto_chain(settings: Settings) -> list[str]:
    """Names of the enabled providers, in ``auto`` order."""
    return [name for name in AUTO_ORDER if name in BUILDERS and ENABLED[name](settings)]
