"""Suite-wide fixtures and guards.

- Network guard: any connection to an address outside loopback fails loudly, so no test can reach a real
  cloud API (or anything else) by accident.
- Isolation: every test runs in its own empty working directory with LLM/ctistudio variables cleared, so a
  developer's .env or keys never leak in.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["ctistudio.testing.fixtures", "ctistudio.testing.isolation", "pytester"]

# -- network guard ---------------------------------------------------------------------------------
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not _is_loopback(str(host)):
            raise RuntimeError(
                f"test tried to connect to {address!r}: tests may only talk to loopback (127.0.0.0/8, ::1)"
            )


def _guarded_connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]

# -- environment isolation -------------------------------------------------------------------------
_PREFIXES = ("LMSTUDIO_", "LLAMACPP_", "MLX_", "OLLAMA_", "OPENAI_", "ANTHROPIC_", "LLM_PROVIDER", "CTISTUDIO_", "HF_")
_KEEP = {"CTISTUDIO_MODELS_DIR", "CTISTUDIO_SHARED_DIR", "HF_HOME"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key in list(os.environ):
        if key.upper().startswith(_PREFIXES) and key.upper() not in _KEEP:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CTISTUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CTISTUDIO_LOG_DIR", str(tmp_path / "logs"))
    # Nothing local is assumed to run: point LM Studio at a loopback port nobody listens on.
    monkeypatch.setenv("LMSTUDIO_API_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LMSTUDIO_EMBEDDING_URL", "http://127.0.0.1:9/v1/embeddings")
    monkeypatch.setenv("CTISTUDIO_RETRY_BACKOFF", "0.01")
    yield


def shared_dir() -> Path:
    """The read-only ``shared/`` folder (SigmaHQ corpus, eval sets): CTISTUDIO_SHARED_DIR, ../shared, /work/shared."""
    for candidate in (os.environ.get("CTISTUDIO_SHARED_DIR"), REPO.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "sigmahq").is_dir():
            return Path(candidate)
    raise RuntimeError("shared/ not found: set CTISTUDIO_SHARED_DIR to the folder holding sigmahq/ and evalsets/")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()
