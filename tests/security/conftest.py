"""The security suite's real server: ``ctistudio serve`` in a child process on a loopback port.

Bombs are measured the way an attacker meets them: over HTTP against a separate server process, timing
the answer (and a concurrent ``/health``) from this process and reading the server's peak memory from
``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.web.conftest import client, free_port, live_server, make_app, open_client  # noqa: F401  (the web suite's fixtures)

# What every server of the suite runs with: nothing outside loopback, no model loads.
QUIET_ENV = {
    "PYTHONUNBUFFERED": "1",
    "CTISTUDIO_EMBEDDED": "false",
    "CTISTUDIO_EMBEDDING_PROVIDER": "lmstudio",
    "CTISTUDIO_PYPI_INDEX_URL": "http://127.0.0.1:9/simple",
    "LMSTUDIO_API_URL": "http://127.0.0.1:9/v1",
    "LMSTUDIO_EMBEDDING_URL": "http://127.0.0.1:9/v1/embeddings",
}


@dataclass
class ServerProcess:
    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc status")

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log()

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_server(workdir: Path, *args: str, **env: str) -> ServerProcess:
    """``ctistudio serve`` (plus ``args``) in ``workdir`` with ``env``; returns once ``/health`` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("CTISTUDIO_", "LMSTUDIO_", "OPENAI_", "ANTHROPIC_"))
    }
    environ.update(QUIET_ENV)
    environ.update(CTISTUDIO_DATA_DIR=str(workdir / "data"), CTISTUDIO_LOG_DIR=str(workdir / "logs"))
    for key in ("CTISTUDIO_MODELS_DIR", "CTISTUDIO_SHARED_DIR"):
        if key in os.environ:
            environ[key] = os.environ[key]
    environ.update(env)
    with (workdir / "server.log").open("w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "ctistudio.cli.main", "serve", "--port", str(port), *args],
            cwd=workdir,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, port, workdir)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the server exited:\n" + server.log())
        try:
            httpx.get(f"{server.url}/health", timeout=5)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError("the server did not start:\n" + server.log())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server (authentication off, the default) shared by the suite: leave its settings alone."""
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``server_with(**env)``: a real server of this test with extra settings (stopped at the end)."""
    started: list[ServerProcess] = []

    def start(*args: str, **env: str) -> ServerProcess:
        running = start_server(tmp_path / f"server{len(started)}", *args, **env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def alias_bomb(levels: int = 9, width: int = 9, indent: str = "") -> list[str]:
    """Lines of a billion-laughs YAML: ``a0`` is 9 strings, each next anchor 9 aliases of the previous."""
    lines = [f"{indent}a0: &a0 [" + ",".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"{indent}a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return lines


def timed(call: Callable[[], httpx.Response], delay: float = 0.0) -> tuple[httpx.Response, float]:
    """``call()`` after ``delay`` seconds, with how long it took."""
    time.sleep(delay)
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


_MEASURE = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(result.stderr)
sys.stdout.write(result.stdout)
sys.stdout.write(f"\\n@@peak-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {result.returncode}\\n")
"""


def run_measured(command: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``command`` as the only child of a fresh Python; its result (with its own exit code) and its
    peak resident memory in MiB."""
    wrapper = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, timeout=timeout
    )
    out, _, tail = wrapper.stdout.rpartition("\n@@peak-kb ")
    peak_kb, code = tail.split()
    result = subprocess.CompletedProcess(command, int(code), out, wrapper.stderr)
    return result, int(peak_kb) / 1024
