"""The machine and software a benchmark ran on (the report's "measured on" line)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path

from ctistudio.bench.models import Environment
from ctistudio.config import SEED_ALIASES, Settings, env_name

# Distributions whose versions shape the figures (engines, clients, validators).
VERSIONED = (
    "ctistudio",
    "xllamacpp",
    "llama-cpp-python",
    "mlx-lm",
    "httpx",
    "pydantic",
    "openai",
    "anthropic",
    "pysigma",
    "onnxruntime",
    "matplotlib",
)


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``sysctl`` names elsewhere via platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def total_ram() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_description() -> str | None:
    """A GPU the engines could use, as far as can be told without running vendor tools; ``None``: none seen."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "Apple Silicon (Metal)"
    if Path("/dev/nvidia0").exists():
        return "NVIDIA (/dev/nvidia0)"
    if Path("/dev/kfd").exists():
        return "AMD ROCm (/dev/kfd)"
    return None


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def package_versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def settings_snapshot(settings: Settings) -> dict[str, str]:
    """The settings that shape the figures (never a secret)."""
    s = settings
    values = {
        "CTISTUDIO_TEMPERATURE": s.temperature,
        "CTISTUDIO_TOP_P": s.top_p,
        "CTISTUDIO_SEED": s.seed,
        "CTISTUDIO_TIMEOUT": s.timeout,
        "CTISTUDIO_MAX_IN_FLIGHT": s.max_in_flight,
        "CTISTUDIO_EMBEDDED_MODEL": s.embedded_model,
        "CTISTUDIO_EMBEDDED_N_CTX": s.embedded_n_ctx,
        "LLAMACPP_N_CTX": s.llamacpp_n_ctx,
        "LLAMACPP_THREADS": s.llamacpp_threads if s.llamacpp_threads is not None else f"auto ({os.cpu_count()})",
        "LMSTUDIO_API_URL": s.lmstudio_api_url,
        **{env_name(own): value for own in SEED_ALIASES.values() if (value := getattr(s, own)) is not None},
        "LLAMACPP_SERVER_URL": s.llamacpp_server_url,
        "OLLAMA_URL": s.ollama_url,
    }
    return {key: str(value) for key, value in values.items()}


def capture_environment(settings: Settings) -> Environment:
    return Environment(
        hostname=socket.gethostname(),
        os=platform.platform(),
        python=sys.version.split()[0],
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        ram_bytes=total_ram(),
        gpu=gpu_description(),
        load_average=load_average(),
        versions=package_versions(),
        settings=settings_snapshot(settings),
    )
