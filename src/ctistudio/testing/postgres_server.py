"""A throw-away PostgreSQL server for tests and benchmarks, started from Debian's binaries.

``PostgresServer`` runs ``initdb`` into a temporary folder and ``pg_ctl start`` on 127.0.0.1 and a free
port (trust authentication, fsync off: test data only). PostgreSQL refuses to run as root, so when the
process is root (as in CI) the server runs as the ``postgres`` system user that Debian's package creates.
Install the binaries with ``apt-get install postgresql`` (``./studio test`` does it from
``scripts/system-packages.txt``).

    with PostgresServer() as server:
        url = server.create_database("test_1")   # postgresql+psycopg://…/test_1
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing or the server would not start."""


def find_pg_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest Debian version first, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. "
        "Fix: apt-get install postgresql (./studio test installs it from scripts/system-packages.txt)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port``."""

    def __init__(self, *, user: str = "ctistudio") -> None:
        self.bin = find_pg_bin()
        self.user = user
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="ctistudio-pg-"))
        self.data_dir = self._root / "data"
        self._run_as: str | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            self._prepare_for_postgres_user()
        self._run([str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8"])
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self._root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        log_file = self._root / "server.log"
        self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l", str(log_file), "-w", "start"]
        )
        self._started = True
        self._wait_ready()
        return self

    def stop(self) -> None:
        if self._started:
            self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], check=False
            )
            self._started = False
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its SQLAlchemy URL."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- internals ---------------------------------------------------------------------------------
    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database}"

    def _prepare_for_postgres_user(self) -> None:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable(
                "running as root, and there is no 'postgres' user to run the server as. "
                "Fix: apt-get install postgresql (it creates the user), or run the tests as a normal user."
            ) from exc
        self._run_as = "postgres"
        self._root.chmod(0o755)
        shutil.chown(self._root, user="postgres", group="postgres")

    def _run(self, argv: list[str], *, check: bool = True) -> None:
        if self._run_as:
            argv = ["runuser", "-u", self._run_as, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self._root)
        if check and result.returncode != 0:
            log = self._root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(argv[-1] if argv[-1] != 'start' else argv[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"PostgreSQL did not accept connections: {exc}") from exc
                time.sleep(0.1)
