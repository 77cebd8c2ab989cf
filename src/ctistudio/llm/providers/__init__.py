"""Provider construction from settings, the ``auto`` chain and the embedding provider, read from the specs.

Each provider's facts live in its :class:`~ctistudio.llm.providers.specs.ProviderSpec`
(:mod:`ctistudio.llm.providers.specs`); builders import optional engines lazily, so an engine that is not
installed (mlx-lm, llama-cpp-python) costs nothing until it is asked for.
"""

from __future__ import annotations

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm.hosts import HostSet
from ctistudio.llm.provider import Provider
from ctistudio.llm.providers.specs import SPECS, ProviderSpec, provider_names, sampling, spec_for

__all__ = [
    "SPECS",
    "ProviderSpec",
    "auto_chain",
    "build_provider",
    "embedding_provider_name",
    "embedding_provider_names",
    "host_urls",
    "provider_names",
    "sampling",
    "spec_for",
]


def host_urls(name: str, settings: Settings) -> list[str]:
    """The inference hosts configured for provider ``name`` (empty: not a server, or one URL-less engine)."""
    return spec_for(name).host_urls(settings)


def build_provider(name: str, settings: Settings) -> Provider:
    """Build provider ``name`` from ``settings`` (whether or not it is enabled: an explicit choice wins)."""
    spec = spec_for(name)
    urls = spec.host_urls(settings)
    if len(urls) <= 1:
        hosts = [spec.build(settings)]
    else:  # one provider per host (each its own transport and endpoint); no localhost fallback between them
        field = spec.url_setting or ""
        hosts = [spec.build(settings.model_copy(update={field: url}), several_hosts=True) for url in urls]
    for host in hosts:
        host.request_defaults = spec.sampling(settings)
    return hosts[0] if len(hosts) == 1 else HostSet(hosts)


def auto_chain(settings: Settings) -> list[str]:
    """Names of the enabled providers, in ``auto`` order."""
    return [spec.name for spec in SPECS if spec.enabled(settings)]


def embedding_provider_name(settings: Settings) -> str:
    """The ONE provider that makes embeddings (never a fallback chain: vectors of two models don't mix).

    ``CTISTUDIO_EMBEDDING_PROVIDER`` names it; ``auto`` means the embedded MiniLM (offline, always the same
    vectors) unless ``CTISTUDIO_EMBEDDED=false``, then the first enabled provider that makes embeddings (by
    each spec's ``embedding_rank``). The choice depends on settings only, not on which server happens to
    answer, so an index never gets vectors of two models.
    """
    if settings.embedding_provider != "auto":
        return settings.embedding_provider
    if settings.embedded:
        return "embedded"
    for spec in _embedding_specs():
        if spec.enabled(settings):
            return spec.name
    raise ConfigurationError(
        "no embedding provider: the embedded engine is off (CTISTUDIO_EMBEDDED=false) and no provider that "
        "makes embeddings is enabled",
        fix=f"Set CTISTUDIO_EMBEDDING_PROVIDER ({', '.join(embedding_provider_names())}) or CTISTUDIO_EMBEDDED=true.",
    )


def embedding_provider_names() -> list[str]:
    """The providers ``CTISTUDIO_EMBEDDING_PROVIDER`` may name: the embedded engine, then by rank."""
    return ["embedded", *(spec.name for spec in _embedding_specs())]


def _embedding_specs() -> list[ProviderSpec]:
    return sorted((s for s in SPECS if s.embedding_rank is not None), key=lambda s: s.embedding_rank or 0)
