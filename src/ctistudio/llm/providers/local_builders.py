"""Builders for the local engines: llama.cpp (in-process or server), MLX, Ollama and the embedded engine.

``llamacpp`` is one provider name with two forms: with ``LLAMACPP_MODEL_PATH`` set, llama-cpp-python runs
the model in this process; without it, ctistudio talks to the llama.cpp server at ``LLAMACPP_SERVER_URL``.
A model path may also be a catalog name (``ctistudio models list``), resolved in ``CTISTUDIO_MODELS_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctistudio.config import Settings
from ctistudio.llm.provider import Provider
from ctistudio.modelhub import CATALOG, ModelInstaller


def resolve_model_path(value: str, settings: Settings) -> Path:
    """A file/folder path as given, or the installed path of a catalog model of that name."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    installer = ModelInstaller.from_settings(settings)
    if value in installer.catalog:
        return installer.entry(value).path(installer.models_dir)
    return path  # missing: the provider's health and errors say so with the fix


def looks_like_model_file(value: str) -> bool:
    """A GGUF path or a catalog name: something an in-process engine can load (not a server's model name)."""
    return value.endswith(".gguf") or Path(value).expanduser().exists() or value in CATALOG


def build_llamacpp(s: Settings, *, several_hosts: bool = False) -> Provider:
    if s.llamacpp_model_path:
        from ctistudio.llm.providers.llamacpp import LlamaCppProvider

        path = resolve_model_path(s.llamacpp_model_path, s)
        return LlamaCppProvider(
            path,
            n_ctx=s.llamacpp_n_ctx,
            threads=s.llamacpp_threads or os.cpu_count(),  # llama-cpp-python alone would use half the cores
            n_gpu_layers=s.llamacpp_n_gpu_layers,
            seed=s.seed,
            default_model=path.stem if path.suffix == ".gguf" else s.llamacpp_model_path,
            context_overrides=s.context_lengths,
        )
    from ctistudio.llm.providers.llamacpp_server import LlamaCppServerProvider

    return LlamaCppServerProvider(
        s.llamacpp_server_url,
        timeout=s.timeout,
        max_in_flight=s.max_in_flight,
        context_overrides=s.context_lengths,
    )


def build_mlx(s: Settings) -> Provider:
    from ctistudio.llm.providers.mlx import MLXProvider

    value = s.mlx_model_path or "qwen2.5-coder-0.5b-instruct-mlx-4bit"
    return MLXProvider(str(resolve_model_path(value, s)), default_model=value, context_overrides=s.context_lengths)


def build_ollama(s: Settings, *, several_hosts: bool = False) -> Provider:
    from ctistudio.llm.providers.ollama import OllamaProvider

    return OllamaProvider(
        s.ollama_url,
        timeout=s.timeout,
        default_model=s.ollama_model,
        embedding_model=s.ollama_embedding_model,
        max_in_flight=s.max_in_flight,
        context_overrides=s.context_lengths,
    )


def build_embedded(s: Settings) -> Provider:
    from ctistudio.llm.providers.embedded import EmbeddedProvider

    return EmbeddedProvider(
        ModelInstaller.from_settings(s),
        chat_model=s.embedded_model,
        n_ctx=s.embedded_n_ctx,
        threads=s.llamacpp_threads,
        timeout=s.timeout,
    )
