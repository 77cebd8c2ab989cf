"""Provider construction from settings, and the order of the ``auto`` chain.

Each provider name maps to a builder ``(settings) -> Provider``; builders import their module lazily so an
engine that is not installed (mlx-lm, llama-cpp-python) costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ctistudio.config import Settings, url_list
from ctistudio.errors import ConfigurationError
from ctistudio.llm.hosts import HostSet
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers.mlx import is_apple_silicon

# The seed's chain — MLX → llama.cpp → LM Studio → cloud — with Ollama and any OpenAI-compatible server
# among the local ones, and the embedded engine last so a user who configured nothing still gets answers.
AUTO_ORDER = ["mlx", "llamacpp", "lmstudio", "ollama", "openai_compat", "openai", "anthropic", "embedded"]

# name -> "module:function" building the provider from settings
BUILDERS: dict[str, str] = {
    "lmstudio": "ctistudio.llm.providers.builders:build_lmstudio",
    "openai": "ctistudio.llm.providers.builders:build_openai",
    "anthropic": "ctistudio.llm.providers.builders:build_anthropic",
    "openai_compat": "ctistudio.llm.providers.builders:build_openai_compat",
    "llamacpp": "ctistudio.llm.providers.local_builders:build_llamacpp",
    "mlx": "ctistudio.llm.providers.local_builders:build_mlx",
    "ollama": "ctistudio.llm.providers.local_builders:build_ollama",
    "embedded": "ctistudio.llm.providers.local_builders:build_embedded",
}

# name -> whether settings enable it (a provider that is not enabled is skipped by ``auto``)
ENABLED: dict[str, Callable[[Settings], bool]] = {
    "mlx": lambda s: s.mlx_enabled and is_apple_silicon(),  # MLX runs only on Apple Silicon
    "llamacpp": lambda s: s.llamacpp_enabled,
    "lmstudio": lambda s: s.lmstudio_enabled,
    "ollama": lambda s: s.ollama_enabled,
    "openai_compat": lambda s: bool(s.openai_compat_url),
    "openai": lambda s: s.openai_api_key is not None,
    "anthropic": lambda s: s.anthropic_api_key is not None,
    "embedded": lambda s: s.embedded,
}


# name -> (the setting listing its hosts, comma-separated; whether the settings use those hosts at all)
HOST_SETTINGS: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "lmstudio": ("lmstudio_api_url", lambda s: True),
    "llamacpp": ("llamacpp_server_url", lambda s: not s.llamacpp_model_path),  # a model path runs in-process
    "ollama": ("ollama_url", lambda s: True),
    "openai_compat": ("openai_compat_url", lambda s: True),
}


def host_urls(name: str, settings: Settings) -> list[str]:
    """The inference hosts configured for provider ``name`` (empty: not a server, or one URL-less engine)."""
    field, uses_hosts = HOST_SETTINGS.get(name, ("", lambda s: False))
    return url_list(getattr(settings, field)) if field and uses_hosts(settings) else []


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
    urls = host_urls(name, settings)
    if len(urls) <= 1:
        return builder(settings)
    field = HOST_SETTINGS[name][0]
    # one provider per host (each its own transport and endpoint); no localhost fallback between them
    return HostSet([builder(settings.model_copy(update={field: url}), several_hosts=True) for url in urls])


def auto_chain(settings: Settings) -> list[str]:
    """Names of the enabled providers, in ``auto`` order."""
    return [name for name in AUTO_ORDER if name in BUILDERS and ENABLED[name](settings)]


# Embedding providers, in the order ``auto`` considers them when the embedded engine is switched off.
EMBEDDING_ORDER = ["lmstudio", "ollama", "openai_compat", "openai", "llamacpp"]


def embedding_provider_name(settings: Settings) -> str:
    """The ONE provider that makes embeddings (never a fallback chain: vectors of two models don't mix).

    ``CTISTUDIO_EMBEDDING_PROVIDER`` names it; ``auto`` means the embedded MiniLM (offline, always the same
    vectors) unless ``CTISTUDIO_EMBEDDED=false``, then the first enabled provider of :data:`EMBEDDING_ORDER`.
    The choice depends on settings only, not on which server happens to answer, so an index never gets
    vectors of two models.
    """
    if settings.embedding_provider != "auto":
        return settings.embedding_provider
    if settings.embedded:
        return "embedded"
    for name in EMBEDDING_ORDER:
        if ENABLED[name](settings):
            return name
    raise ConfigurationError(
        "no embedding provider: the embedded engine is off (CTISTUDIO_EMBEDDED=false) and no provider that "
        "makes embeddings is enabled",
        fix="Set CTISTUDIO_EMBEDDING_PROVIDER (embedded, lmstudio, ollama, openai, openai_compat, llamacpp) or "
        "CTISTUDIO_EMBEDDED=true.",
    )
