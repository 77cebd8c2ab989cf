"""Real engines for the engine tests: llama.cpp's llama-server (xllamacpp, in this process) and
llama-cpp-python's own server (a subprocess), both serving the packaged Qwen2.5-Coder-0.5B model."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctistudio.llm.providers.embedded import EmbeddedLlamaServer
from ctistudio.modelhub import DEFAULT_CHAT_MODEL
from ctistudio.testing.installed_models import require_installed

SERVER_CTX = 1024  # two slots without a unified KV cache: 512 tokens per request
SERVER_SLOTS = 2


class LoopTicker:
    """Counts event-loop ticks while an engine works: proof that the work ran off the loop."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def __enter__(self) -> LoopTicker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
def loop_ticker() -> LoopTicker:
    return LoopTicker()


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    return require_installed(DEFAULT_CHAT_MODEL)


@pytest.fixture(scope="session")
def llama_server(qwen_path: Path) -> Iterator[EmbeddedLlamaServer]:
    """A real llama-server: 1,024 tokens split over 2 slots (per-request window 512, as /props says)."""
    server = EmbeddedLlamaServer(
        qwen_path, n_ctx=SERVER_CTX, slots=SERVER_SLOTS, threads=2, alias="qwen-test", kv_unified=False
    )
    yield server
    server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_cpp_python_server(qwen_path: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` (llama-cpp-python's own server) on a free port; yields its root URL."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is in the dev extra")
    port = _free_port()
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(qwen_path),
            "--model_alias",
            "qwen-test",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            "--n_threads",
            "2",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}")
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
