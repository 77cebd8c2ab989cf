"""A throw-away PostgreSQL server for tests and benchmarks, started from Debian's binaries.

``PostgresServer`` runs ``initdb`` into a temporary folder and ``pg_ctl start`` on 127.0.0.1 and a free
port (trust authentication, fsync off: test data only). PostgreSQL refuses to run as root, so when the
process is root (as in CI) the server runs as the ``postgres`` system user that Debian's package creates.
Install the binaries with ``apt-get install postgresql`` (``./studio test`` does it from
``scripts/system-packages.txt``).

    with PostgresServer() as server:
        url = server.create_database("test_1")   # postgresql+psycopg://…/test_1

Debian's PostgreSQL has no pgvector. ``PostgresServer(bin_dir=pgserver_bin())`` runs the PostgreSQL 16 that
the ``pgserver`` wheel (a dev dependency) bundles with the pgvector extension instead — same folder
layout, same start and stop, also as root.
"""

from __future__ import annotations

import glob
import importlib.util
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


def pgserver_bin() -> Path:
    """The binaries of the PostgreSQL bundled with pgvector in the ``pgserver`` wheel.

    Found without importing ``pgserver`` (its import sets up runtime folders and warns when
    ``XDG_RUNTIME_DIR`` is unset); only its ``pginstall`` folder is used.
    """
    spec = importlib.util.find_spec("pgserver")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder, "pginstall", "bin")
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresUnavailable(
        "the pgserver wheel (PostgreSQL with pgvector) is not installed. "
        "Fix: .venv/bin/uv pip install --python .venv/bin/python -e '.[dev]' (pgserver is a dev dependency)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port``."""

    def __init__(self, *, user: str = "ctistudio", bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or find_pg_bin()
        self.user = user
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="ctistudio-pg-"))
        self.data_dir = self._root / "data"
        self._run_as: str | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.stop()  # no server or temporary folder left behind
            raise
        return self

    def _start(self) -> None:
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
        self._make_binaries_reachable()

    def _make_binaries_reachable(self) -> None:
        """Copy a bundled installation (pgserver's, in a virtualenv under a private home, say) that the
        ``postgres`` user cannot reach into the server's folder; Debian's binaries are always reachable.

        The wheel's binaries find their libraries at ``$ORIGIN/../../../pgserver.libs``: the copy keeps
        that layout (``<copy>/pgserver/pginstall/{bin,lib,share}`` next to ``<copy>/pgserver.libs``).
        """
        probe = ["runuser", "-u", "postgres", "--", "test", "-x", str(self.bin / "postgres")]
        if subprocess.run(probe, capture_output=True, timeout=30).returncode == 0:
            return
        install, package = self.bin.parent, self.bin.parent.parent
        copy = self._root / "install" / package.name / install.name
        for part in ("bin", "lib", "share"):
            if (install / part).is_dir():
                shutil.copytree(install / part, copy / part, symlinks=True)
        libraries = package.parent / f"{package.name}.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, self._root / "install" / libraries.name, symlinks=True)
        self.bin = copy / "bin"

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
