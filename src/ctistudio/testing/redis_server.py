"""A throw-away Redis server for tests and benchmarks: Debian's ``redis-server`` on 127.0.0.1 and a free port.

No persistence (``--save ""``, no append-only file), its folder removed on stop. Install the binary with
``apt-get install redis-server`` (``./studio test`` does it from ``scripts/system-packages.txt``).

    with RedisServer() as redis:
        redis.url(0)          # redis://127.0.0.1:PORT/0 -> CTISTUDIO_BROKER_URL
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or would not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).exists():
            raise RedisUnavailable(
                "redis-server not found. Fix: apt-get install redis-server "
                "(./studio test installs it from scripts/system-packages.txt)."
            )
        self.binary = found
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="ctistudio-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self._root), "--logfile", str(self._root / "redis.log"), "--protected-mode", "yes"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while self.command("PING") != "+PONG":
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self._root / "redis.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                self.stop()
                raise RedisUnavailable(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.05)
        return self

    def command(self, *words: str) -> str | None:
        """Send one inline command and return the first line of the reply (None when nothing listens)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall((" ".join(words) + "\r\n").encode())
                return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]
        except OSError:
            return None

    def flush(self) -> None:
        self.command("FLUSHALL")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
