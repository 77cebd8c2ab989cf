"""What ctistudio knows about each provider, in one place: one :class:`ProviderSpec` per backend.

Everything outside ``llm/providers/`` that needs a fact about a provider — how to build it, whether
settings enable it and how to enable it, which setting holds its URL or names its model, whether it is a
cloud service or runs in this process, whether this machine can run it — asks its spec instead of
comparing names. :data:`SPECS` lists them in the order of the ``auto`` chain (the seed's: MLX → llama.cpp →
LM Studio → cloud, with Ollama and any OpenAI-compatible server among the local ones, and the embedded
engine last so a user who configured nothing still gets answers).

A new OpenAI-compatible server (vLLM, LocalAI …) is one more :func:`openai_compatible_server` here plus its
settings in ``config.py`` (docs/gateway.md, "Adding a backend").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctistudio.config import Settings, env_name, url_list
from ctistudio.errors import ConfigurationError
from ctistudio.llm.errors import PlatformUnsupported
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers import builders, local_builders
from ctistudio.llm.providers.mlx import is_apple_silicon, platform_error


def _never(settings: Settings) -> bool:
    return False


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """The facts about one provider that the rest of ctistudio reads (never its name)."""

    name: str  # LLM_PROVIDER / --provider value, result.provider, the key of its router endpoint
    group: str  # the Settings page group that shows its "Test connection" button
    build: Callable[..., Provider]  # settings -> provider (``several_hosts=True`` for one host of several)
    switch: str  # the setting that turns it on: a bool, or a URL/key that enables it when set
    enable_hint: str  # what to set to enable it ("LMSTUDIO_ENABLED=true")
    url_setting: str | None = None  # the setting holding its URL (several, comma-separated, where ``hosts``)
    key_setting: str | None = None  # its API key setting
    key_urls: tuple[str, ...] = ()  # further URL settings its key is sent to (besides ``url_setting``)
    hosts: Callable[[Settings], bool] = _never  # whether ``url_setting`` lists inference hosts now
    model_setting: str | None = None  # the setting naming the model file an in-process engine loads
    in_process: Callable[[Settings], bool] = _never  # the engine runs inside this process (with these settings)
    cloud: bool = False  # a paid service: benchmarks measure it only when asked by name
    bundled: bool = False  # ships with ctistudio, which installs its models on first use (answers when none else)
    platform: Callable[[], PlatformUnsupported | None] = field(default=lambda: None)  # why not on this machine
    embedding_rank: int | None = None  # place among embedding providers for ``auto`` (None: not considered)
    sampling: Callable[[Settings], dict[str, Any]] = field(default=lambda s: sampling(s))  # request defaults

    def enabled(self, settings: Settings) -> bool:
        """Settings turn it on and this machine can run it (``auto`` skips it otherwise)."""
        value = getattr(settings, self.switch)
        return value is not None and value is not False and self.platform() is None

    def host_urls(self, settings: Settings) -> list[str]:
        """Its inference hosts (empty: not a server, or a server with one URL-less engine)."""
        return url_list(getattr(settings, self.url_setting)) if self.url_setting and self.hosts(settings) else []

    def url(self, settings: Settings) -> str | None:
        """What its URL setting holds now (``None``: it has none)."""
        return getattr(settings, self.url_setting) if self.url_setting else None

    def binds_model(self, model: str, settings: Settings) -> bool:
        """Whether asking for ``model`` means loading that model file (``model_setting``) in this process.

        In-process engines serve the model their settings name; llama.cpp does so when it already runs
        in-process or when ``model`` is a GGUF file or catalog name (a plain name goes to its server).
        """
        if self.model_setting is None:
            return False
        return self.in_process(settings) or local_builders.looks_like_model_file(model)

    def model_file(self, settings: Settings) -> Path | None:
        """The file or folder its in-process engine loads with ``settings`` (``None``: none named)."""
        value = getattr(settings, self.model_setting) if self.model_setting else None
        return local_builders.resolve_model_path(value, settings) if value else None


def sampling(settings: Settings, pick: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """What a request gets where it sets none: ``CTISTUDIO_TEMPERATURE``, ``CTISTUDIO_TOP_P``, ``CTISTUDIO_SEED``."""
    value = pick or (lambda name: getattr(settings, name))
    return {name: value(name) for name in ("temperature", "top_p", "seed")}


def lmstudio_sampling(settings: Settings) -> dict[str, Any]:
    """LM Studio's: its own ``LMSTUDIO_TEMPERATURE`` … where set, else the values every provider gets."""
    return sampling(settings, settings.for_lmstudio)


def _mlx_platform() -> PlatformUnsupported | None:
    return None if is_apple_silicon() else platform_error()


def openai_compatible_server(
    name: str,
    *,
    group: str,
    url_setting: str,
    model_setting: str,
    key_setting: str | None = None,
    embedding_rank: int | None = None,
) -> ProviderSpec:
    """The spec of an OpenAI-compatible server that its URL setting enables (one URL or several hosts)."""
    return ProviderSpec(
        name=name,
        group=group,
        build=builders.openai_compatible(name, url_setting, model_setting, key_setting),
        switch=url_setting,
        enable_hint=f"{env_name(url_setting)}=http://host:port/v1",
        url_setting=url_setting,
        key_setting=key_setting,
        hosts=_always,
        embedding_rank=embedding_rank,
    )


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="mlx",
        group="MLX",
        build=local_builders.build_mlx,
        switch="mlx_enabled",
        enable_hint="MLX_ENABLED=true (Apple Silicon only)",
        model_setting="mlx_model_path",
        in_process=_always,
        platform=_mlx_platform,
    ),
    ProviderSpec(
        name="llamacpp",
        group="llama.cpp",
        build=local_builders.build_llamacpp,
        switch="llamacpp_enabled",
        enable_hint="LLAMACPP_ENABLED=true",
        url_setting="llamacpp_server_url",
        hosts=lambda s: not s.llamacpp_model_path,  # a model path runs in-process: no server
        model_setting="llamacpp_model_path",
        in_process=lambda s: bool(s.llamacpp_model_path),
        embedding_rank=4,
    ),
    ProviderSpec(
        name="lmstudio",
        group="LM Studio",
        build=builders.build_lmstudio,
        switch="lmstudio_enabled",
        enable_hint="LMSTUDIO_ENABLED=true",
        url_setting="lmstudio_api_url",
        key_setting="lmstudio_api_key",
        key_urls=("lmstudio_embedding_url",),
        hosts=_always,
        embedding_rank=0,
        sampling=lmstudio_sampling,
    ),
    ProviderSpec(
        name="ollama",
        group="Ollama",
        build=local_builders.build_ollama,
        switch="ollama_enabled",
        enable_hint="OLLAMA_ENABLED=true",
        url_setting="ollama_url",
        hosts=_always,
        embedding_rank=1,
    ),
    openai_compatible_server(
        "openai_compat",
        group="OpenAI-compatible server",
        url_setting="openai_compat_url",
        model_setting="openai_compat_model",
        key_setting="openai_compat_api_key",
        embedding_rank=2,
    ),
    openai_compatible_server(
        "vllm", group="vLLM", url_setting="vllm_url", model_setting="vllm_model", key_setting="vllm_api_key"
    ),
    ProviderSpec(
        name="openai",
        group="Cloud",
        build=builders.build_openai,
        switch="openai_api_key",
        enable_hint="OPENAI_API_KEY",
        url_setting="openai_base_url",
        key_setting="openai_api_key",
        cloud=True,
        embedding_rank=3,
    ),
    ProviderSpec(
        name="anthropic",
        group="Cloud",
        build=builders.build_anthropic,
        switch="anthropic_api_key",
        enable_hint="ANTHROPIC_API_KEY",
        url_setting="anthropic_base_url",
        key_setting="anthropic_api_key",
        cloud=True,
    ),
    ProviderSpec(
        name="embedded",
        group="Providers",
        build=local_builders.build_embedded,
        switch="embedded",
        enable_hint="CTISTUDIO_EMBEDDED=true",
        model_setting="embedded_model",
        in_process=_always,
        bundled=True,
    ),
)

_BY_NAME = {spec.name: spec for spec in SPECS}


def provider_names() -> list[str]:
    """Every provider, in ``auto`` order."""
    return [spec.name for spec in SPECS]


def spec_for(name: str) -> ProviderSpec:
    """The spec of provider ``name``; :class:`ConfigurationError` naming the known ones otherwise."""
    spec = _BY_NAME.get(name)
    if spec is None:
        raise ConfigurationError(
            f"unknown LLM provider {name!r}",
            fix=f"Use one of: auto, {', '.join(provider_names())} (LLM_PROVIDER or --provider).",
        )
    return spec
